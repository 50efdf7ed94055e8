"""SentencePiece's ``precompiled_charsmap``: a normalisation map as llama.cpp's Unigram tokenizer reads it.

Layout (little-endian): ``uint32`` byte size of the trie, the trie as 32-bit units, then the
replacement strings, each ending with NUL. The trie is a darts-clone XOR-compressed double array
over the UTF-8 bytes of each source string; the leaf of a key holds the byte offset of its
replacement. llama.cpp walks it byte by byte and takes the longest key that prefixes the input.

Unit bits (darts-clone): 0-7 label, 8 has-leaf, 9 offset-shifted, 10-31 offset; a value unit has
bit 31 set and the value in bits 0-30. A node's children sit at ``id ^ offset ^ label``, a key's
value at ``id ^ offset`` (label 0). The array is whole blocks of 256 units: llama.cpp probes
``id ^ offset ^ byte`` for any input byte and aborts the process on an index past the end.
Pure functions, no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

LEAF_BIT = 1 << 8
VALUE_BIT = 1 << 31
MAX_OFFSET = 1 << 21  # offsets below this need no shift; the tries built here stay far below it
BLOCK = 256  # units a node's children may be probed in (one per byte value)


class CharsmapError(ValueError):
    """A map that cannot be compiled (empty or NUL keys), or a blob that is not a charsmap."""


class _Node:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.value: int | None = None


def build_charsmap(mapping: Mapping[str, str]) -> bytes:
    """Compile ``source -> replacement`` (replacement may be empty: the source is deleted)."""
    replacements, offsets = bytearray(), {}
    root = _Node()
    for source in sorted(mapping, key=lambda s: s.encode("utf-8")):
        key, repl = source.encode("utf-8"), mapping[source].encode("utf-8")
        if not key or b"\0" in key or b"\0" in repl:
            raise CharsmapError(f"cannot compile key {source!r} -> {mapping[source]!r}")
        if repl not in offsets:
            offsets[repl] = len(replacements)
            replacements += repl + b"\0"
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _Node())
        node.value = offsets[repl]
    if not root.children:
        raise CharsmapError("empty normalisation map")
    units = _double_array(root)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(replacements)


def _double_array(root: _Node) -> list[int]:
    units = [0]
    used = bytearray(1)  # position 0 is the root
    used[0] = 1
    bases: set[int] = set()  # each node's children block (id ^ offset) must be its own
    free_from = 1
    queue = [(root, 0)]
    while queue:
        node, index = queue.pop()
        labels = ([0] if node.value is not None else []) + sorted(node.children)
        while free_from < len(used) and used[free_from]:
            free_from += 1
        base = _find_base(labels, used, bases, free_from)
        bases.add(base)
        need = (base // BLOCK + 1) * BLOCK  # the whole block any byte may probe
        if need > len(used):
            used.extend(bytes(need - len(used)))
            units.extend([0] * (need - len(units)))
        offset = index ^ base
        if offset >= MAX_OFFSET:
            raise CharsmapError("normalisation map too large for an unshifted double array")
        units[index] |= offset << 10 | (LEAF_BIT if node.value is not None else 0)
        for c in labels:
            used[base ^ c] = 1
            if c == 0:
                units[base] = VALUE_BIT | node.value  # type: ignore[operator]
            else:
                units[base ^ c] = c
                queue.append((node.children[c], base ^ c))
    return units


def _find_base(labels: list[int], used: bytearray, bases: set[int], start: int) -> int:
    """The lowest block position whose label slots are all free (first fit over the free slots)."""
    first, rest = labels[0], labels[1:]
    position = start
    while True:
        if position < len(used):  # the first label's slot must be free: jump to the next free one
            found = used.find(0, position)
            position = found if found >= 0 else len(used)
        base = position ^ first
        if position and base not in bases and not any(_taken(used, base ^ c) for c in rest):
            return base
        position += 1


def _taken(used: bytearray, index: int) -> bool:
    return index == 0 or (index < len(used) and used[index] == 1)


class Charsmap:
    """A compiled charsmap, parsed once, walked exactly as llama.cpp's Unigram tokenizer walks it."""

    def __init__(self, blob: bytes):
        if len(blob) < 4:
            raise CharsmapError("charsmap shorter than its header")
        (size,) = struct.unpack_from("<I", blob)
        if size % 4 or 4 + size >= len(blob):
            raise CharsmapError("charsmap trie size out of bounds")
        self.units = struct.unpack_from(f"<{size // 4}I", blob, 4)
        self.replacements = blob[4 + size :]

    def _unit(self, i: int) -> int:
        if i >= len(self.units):  # llama.cpp throws here, which aborts the process
            raise CharsmapError(f"charsmap unit {i} out of bounds ({len(self.units)} units)")
        return self.units[i]

    @staticmethod
    def _base(u: int) -> int:
        return (u >> 10) << ((u & (1 << 9)) >> 6)

    def normalize_prefix(self, data: bytes, start: int = 0) -> tuple[int, bytes] | None:
        """(bytes consumed, replacement) of the longest key at ``data[start:]``, or None."""
        found = None
        node = self._base(self._unit(0))
        for pos in range(start, len(data)):
            c = data[pos]
            if c == 0:
                break
            node ^= c
            if self._unit(node) & (VALUE_BIT | 0xFF) != c:
                break
            leaf = bool(self._unit(node) & LEAF_BIT)
            node ^= self._base(self._unit(node))
            if leaf:
                value = self._unit(node) & (VALUE_BIT - 1)
                end = self.replacements.index(b"\0", value)
                found = (pos - start + 1, bytes(self.replacements[value:end]))
        return found


def normalize_prefix(charsmap: bytes, data: bytes, start: int = 0) -> tuple[int, bytes] | None:
    """One lookup in a compiled charsmap (see ``Charsmap`` for many)."""
    return Charsmap(charsmap).normalize_prefix(data, start)
