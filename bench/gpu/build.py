"""On the GPU machine, offline: the CUDA engine from the carried sdist, ``llama-server`` from the same
build, and a throwaway virtualenv holding the carried wheels over the machine's own packages.

The wheel is built as ``scripts/install_llama.sh`` builds it (scikit-build-core, ``-DGGML_CUDA=on``),
for the card's own architecture only (nvidia-smi's compute capability; ``KB_CUDA_ARCH`` overrides)
and with every core, from the slimmed sdist with the engine patch and then the bench's switch patch
(``KB_LLAMA_SKIP_LM_HEAD=0`` restores the LM head, so that the same build is also the unpatched
baseline). The CMake build folder is kept, so ``llama-server`` is linked from the same compiled
objects afterwards instead of compiling the CUDA kernels twice. Everything is cached under the
output folder, keyed by sdist, patches and architecture: a second run skips the build.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from bench.gpu.common import MAIN_PATCH, SWITCH_PATCH, VERSION

CMAKE_ARGS = ["-DLLAVA_BUILD=OFF", "-DGGML_CUDA=on", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF"]
# the server on top of the same build folder: no web UI (it would be fetched), no TLS
SERVER_ARGS = [
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
]
CUDA_HOMES = ("/usr/local/cuda", "/opt/cuda")


def _out(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cuda_env() -> dict[str, str]:
    """This environment with the CUDA toolkit's ``bin`` on PATH when ``nvcc`` is not on it yet."""
    env = dict(os.environ)
    if not shutil.which("nvcc"):
        for home in CUDA_HOMES:
            if Path(home, "bin", "nvcc").is_file():
                env["PATH"] = f"{home}/bin{os.pathsep}{env.get('PATH', '')}"
                env.setdefault("CUDACXX", f"{home}/bin/nvcc")
                break
    return env


def gpu_facts() -> dict:
    """The card (name, memory, driver, compute capability), nvcc's version, cores."""
    smi = _out(
        ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,compute_cap", "--format=csv,noheader"]
    )
    first = [f.strip() for f in smi.splitlines()[0].split(",")] if smi else []
    nvcc = shutil.which("nvcc", path=cuda_env()["PATH"])
    return {
        "gpu": first[0] if first else None,
        "gpu_memory": first[1] if len(first) > 1 else None,
        "driver": first[2] if len(first) > 2 else None,
        "compute_cap": first[3] if len(first) > 3 else None,
        "gpus": len(smi.splitlines()) if smi else 0,
        "nvcc": _out([nvcc, "--version"]).splitlines()[-1] if nvcc else None,
        "cores": os.cpu_count(),
    }


def cuda_arch(facts: dict) -> str:
    """The one architecture to compile for: ``KB_CUDA_ARCH``, else the card's ("9.0" -> "90")."""
    if os.environ.get("KB_CUDA_ARCH"):
        return os.environ["KB_CUDA_ARCH"]
    if not facts.get("compute_cap"):
        raise RuntimeError("nvidia-smi reports no compute capability: no GPU visible")
    return facts["compute_cap"].replace(".", "")


def _run(cmd: list[str], log, env: dict | None = None, cwd: Path | None = None) -> None:
    log.write(f"\n$ {' '.join(map(str, cmd))}\n")
    log.flush()
    code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, check=False).returncode
    if code != 0:
        raise RuntimeError(f"{Path(str(cmd[0])).name} {' '.join(map(str, cmd[1:3]))} … exited {code}")


def engine_key(manifest: dict, arch: str) -> str:
    h = hashlib.sha256(manifest["slim_sha256"].encode())
    for p in (MAIN_PATCH, SWITCH_PATCH):
        h.update(p.read_bytes())
    return f"{VERSION}-{h.hexdigest()[:12]}-sm{arch}"


def build_engine(artifacts: Path, build: Path, arch: str, log) -> dict:
    """The CUDA wheel and llama-server, from cache when this key was built before. Returns
    ``{wheel, server, key, cached, seconds…}``; ``server`` is None (with ``server_error``) when only it failed."""
    manifest = json.loads((artifacts / "sdist.json").read_text())
    key = engine_key(manifest, arch)
    dest = build / f"engine-{key}"
    done = dest / "done.json"
    if done.exists():
        return {**json.loads(done.read_text()), "cached": True}
    work = build / "engine-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    _run(["tar", "-xzf", str(artifacts / manifest["slim"]), "-C", str(work)], log)
    src = work / f"llama_cpp_python-{VERSION}"
    for patch in (MAIN_PATCH, SWITCH_PATCH):
        for extra in (["--dry-run"], []):
            _run(["patch", "-d", str(src), "-p1", "--forward", "--quiet", *extra, "-i", str(patch)], log)
    jobs = str(os.cpu_count() or 1)
    env = {
        **cuda_env(),
        "CMAKE_ARGS": " ".join([*CMAKE_ARGS, f"-DCMAKE_CUDA_ARCHITECTURES={arch}"]),
        "CMAKE_BUILD_PARALLEL_LEVEL": jobs,
        # scikit-build-core from the carried wheels, whether or not this Python has it
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(_venv_site(build / "venv")), os.environ.get("PYTHONPATH")])
        ),
    }
    cmake_dir = work / "cmake"
    pip = [sys.executable, "-m", "pip"]
    _run(
        [
            *pip,
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "-w",
            str(work / "dist"),
            f"--config-settings=build-dir={cmake_dir}",
            str(src),
        ],
        log,
        env,
    )
    wheel_s = time.monotonic() - started
    dest.mkdir(parents=True, exist_ok=True)
    wheel = next((work / "dist").glob("llama_cpp_python-*.whl"))
    shutil.copy2(wheel, dest / wheel.name)
    result = {"key": key, "arch": arch, "wheel": str(dest / wheel.name), "wheel_s": wheel_s, "server": None}
    try:
        _run(["cmake", "-S", str(src), "-B", str(cmake_dir), *SERVER_ARGS], log, env)
        _run(["cmake", "--build", str(cmake_dir), "--target", "llama-server", "-j", jobs], log, env)
        binary = next(Path(p) for p in glob.glob(f"{cmake_dir}/**/llama-server", recursive=True))
        shutil.copy2(binary, dest / "llama-server")
        result["server"] = str(dest / "llama-server")
    except (RuntimeError, StopIteration) as err:
        result["server_error"] = str(err) or "no llama-server binary in the build folder"
    result["seconds"] = time.monotonic() - started
    done.write_text(json.dumps(result))
    shutil.rmtree(work, ignore_errors=True)
    return {**result, "cached": False}


def _venv_site(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def make_venv(build: Path, wheelhouse: Path, log) -> Path:
    """A virtualenv over this Python's packages (PyTorch, transformers, …: a ``.pth`` names them) with
    the carried wheels installed over them. Made once per wheelhouse; returns its python."""
    venv = build / "venv"
    wheels = sorted(p.name for p in wheelhouse.glob("*.whl"))
    stamp = venv / ".kb-wheelhouse"
    if stamp.exists() and stamp.read_text() == "\n".join(wheels):
        return venv / "bin" / "python"
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], log)
    parent = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    site_dir = _venv_site(venv)
    site_dir.mkdir(parents=True, exist_ok=True)
    (site_dir / "_kb_parent.pth").write_text("\n".join(dict.fromkeys(parent)) + "\n")
    if wheels:
        install(venv, [wheelhouse / w for w in wheels], log)
    stamp.write_text("\n".join(wheels))
    return venv / "bin" / "python"


def install(venv: Path, wheels: list[Path], log) -> None:
    """Install these wheels alone (no index, no dependencies) into ``venv`` with this Python's pip."""
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--ignore-installed",
            "--prefix",
            str(venv),
            *map(str, wheels),
        ],
        log,
    )


def engine_lib_dir(venv: Path) -> Path:
    """Where the installed wheel keeps libllama and ggml: llama-server loads the same files."""
    return _venv_site(venv) / "llama_cpp" / "lib"
