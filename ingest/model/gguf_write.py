"""A small GGUF (version 3) writer: metadata and tensors whose bytes are already in ggml's layout.

Only what kb's converters need: scalar, string and array metadata, F32 and block-quantised tensors
given as raw bytes (copied as they are, never re-encoded). Written once, streamed to a file; no
reader, no dependency beyond the standard library.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
VERSION = 3
ALIGNMENT = 32


class ValueType(IntEnum):
    UINT8 = 0
    INT8 = 1
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9


class TensorType(IntEnum):
    """ggml tensor types and their (block elements, block bytes)."""

    F32 = 0
    Q4_0 = 2

    @property
    def block(self) -> tuple[int, int]:
        return {TensorType.F32: (1, 4), TensorType.Q4_0: (32, 18)}[self]

    def nbytes(self, n_elements: int) -> int:
        elements, size = self.block
        if n_elements % elements:
            raise ValueError(f"{self.name}: {n_elements} elements is not a whole number of blocks")
        return n_elements // elements * size


_SCALAR = {
    ValueType.UINT8: "<B",
    ValueType.INT8: "<b",
    ValueType.UINT32: "<I",
    ValueType.INT32: "<i",
    ValueType.FLOAT32: "<f",
    ValueType.BOOL: "<?",
}


def _string(text: str | bytes) -> bytes:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return struct.pack("<Q", len(data)) + data


def _values(vtype: ValueType, values: Sequence) -> bytes:
    if vtype == ValueType.STRING:
        return b"".join(_string(v) for v in values)
    if vtype == ValueType.UINT8 and isinstance(values, (bytes, bytearray, memoryview)):
        return bytes(values)
    fmt = _SCALAR[vtype]
    return struct.pack(f"<{len(values)}{fmt[1]}", *values)


@dataclass(frozen=True, slots=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]  # ne0 first (the contiguous dimension), as GGUF stores it
    ttype: TensorType
    data: memoryview


class GgufWriter:
    """Collects metadata and tensors, then ``write`` streams the file."""

    def __init__(self, architecture: str):
        self._kv: list[bytes] = []
        self._keys: set[str] = set()
        self._tensors: list[_Tensor] = []
        self.add("general.architecture", ValueType.STRING, architecture)

    def add(self, key: str, vtype: ValueType, value) -> None:
        self._claim(key)
        encoded = _string(value) if vtype == ValueType.STRING else struct.pack(_SCALAR[vtype], value)
        self._kv.append(_string(key) + struct.pack("<I", vtype) + encoded)

    def add_array(self, key: str, vtype: ValueType, values: Sequence) -> None:
        self._claim(key)
        head = struct.pack("<IIQ", ValueType.ARRAY, vtype, len(values))
        self._kv.append(_string(key) + head + _values(vtype, values))

    def add_tensor(self, name: str, shape: Sequence[int], ttype: TensorType, data) -> None:
        """``data``: the tensor's bytes in ggml's layout (rows of ``shape[0]`` elements)."""
        view = memoryview(data).cast("B")
        n = 1
        for d in shape:
            n *= d
        if view.nbytes != ttype.nbytes(n):
            raise ValueError(
                f"tensor {name}: {view.nbytes} bytes, shape {tuple(shape)} {ttype.name} needs {ttype.nbytes(n)}"
            )
        if any(t.name == name for t in self._tensors):
            raise ValueError(f"tensor {name} added twice")
        self._tensors.append(_Tensor(name, tuple(shape), ttype, view))

    def _claim(self, key: str) -> None:
        if key in self._keys:
            raise ValueError(f"metadata key {key} added twice")
        self._keys.add(key)

    def write(self, path: Path) -> None:
        with Path(path).open("wb") as f:
            self._write(f)

    def _write(self, f: BinaryIO) -> None:
        f.write(MAGIC + struct.pack("<IQQ", VERSION, len(self._tensors), len(self._kv)))
        f.writelines(self._kv)
        offset = 0
        for t in self._tensors:
            f.write(
                _string(t.name) + struct.pack(f"<I{len(t.shape)}QIQ", len(t.shape), *t.shape, t.ttype, offset)
            )
            offset += _padded(t.data.nbytes)
        f.write(b"\0" * (_padded(f.tell()) - f.tell()))
        for t in self._tensors:
            f.write(t.data)
            f.write(b"\0" * (_padded(t.data.nbytes) - t.data.nbytes))


def _padded(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
