"""Qwen3-architecture GGUF files with random weights and the real Qwen vocabulary, for tests and benchmarks.

The same weights are returned as a HF-named state dict so the reference (transformers' Qwen3) can load
them: parity is checked over identical numbers. With `QWEN3_0_6B` shapes a file is exact for speed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tests.helpers.qwen_vocab import QWEN3_USER_DEFINED, QwenVocab, cache_dir, load_qwen3_vocab

GENERATOR_VERSION = 2
EOT = "<|endoftext|>"
# the core of Qwen3's chat template: ChatML turns, and an empty think block when thinking is off
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)


@dataclass(frozen=True)
class Qwen3Shape:
    n_layer: int
    hidden: int
    n_head: int
    n_head_kv: int
    head_dim: int
    ffn: int
    context: int = 32768
    rope_theta: float = 1_000_000.0
    rms_eps: float = 1e-6


TINY = Qwen3Shape(n_layer=2, hidden=64, n_head=4, n_head_kv=2, head_dim=16, ffn=128)
QWEN3_0_6B = Qwen3Shape(n_layer=28, hidden=1024, n_head=16, n_head_kv=8, head_dim=128, ffn=3072)


@dataclass(frozen=True)
class ModelSpec:
    shape: Qwen3Shape = TINY
    ftype: str = "f32"  # f32 | f16 | q8_0
    seed: int = 0
    kind: str = "embedding"  # embedding (pooling last) | reranker (generation head: yes/no logits) | chat
    add_eos: bool = True  # False mimics older GGUFs whose tokenizer does not append <|endoftext|>

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "v": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def random_weights(shape: Qwen3Shape, vocab_size: int, seed: int) -> dict[str, np.ndarray]:
    """HF-named float32 weights, scaled so every block changes the residual stream noticeably."""
    rng = np.random.default_rng(seed)

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) / np.sqrt(cols)).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    h, hd = shape.hidden, shape.head_dim
    w = {"model.embed_tokens.weight": rng.standard_normal((vocab_size, h), dtype=np.float32)}
    for i in range(shape.n_layer):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(h)
        w[p + "self_attn.q_proj.weight"] = mat(shape.n_head * hd, h)
        w[p + "self_attn.k_proj.weight"] = mat(shape.n_head_kv * hd, h)
        w[p + "self_attn.v_proj.weight"] = mat(shape.n_head_kv * hd, h)
        w[p + "self_attn.o_proj.weight"] = mat(h, shape.n_head * hd)
        w[p + "self_attn.q_norm.weight"] = norm(hd)
        w[p + "self_attn.k_norm.weight"] = norm(hd)
        w[p + "post_attention_layernorm.weight"] = norm(h)
        w[p + "mlp.gate_proj.weight"] = mat(shape.ffn, h)
        w[p + "mlp.up_proj.weight"] = mat(shape.ffn, h)
        w[p + "mlp.down_proj.weight"] = mat(h, shape.ffn)
    w["model.norm.weight"] = norm(h)
    return w


_GGUF_NAMES = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def gguf_name(hf: str) -> str:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    _, _, idx, rest = hf.split(".", 3)
    base = rest.rsplit(".", 1)[0]
    return f"blk.{idx}.{_GGUF_NAMES[base]}.weight"


def write_gguf(path: Path, spec: ModelSpec, weights: dict[str, np.ndarray], vocab: QwenVocab) -> None:
    import gguf

    s = spec.shape
    w = gguf.GGUFWriter(str(path), "qwen3")
    w.add_name(f"kb-test-qwen3-{spec.kind}-{spec.key()}")
    w.add_block_count(s.n_layer)
    w.add_context_length(s.context)
    w.add_embedding_length(s.hidden)
    w.add_feed_forward_length(s.ffn)
    w.add_head_count(s.n_head)
    w.add_head_count_kv(s.n_head_kv)
    w.add_key_length(s.head_dim)
    w.add_value_length(s.head_dim)
    w.add_rope_freq_base(s.rope_theta)
    w.add_layer_norm_rms_eps(s.rms_eps)
    if spec.kind == "embedding":
        w.add_pooling_type(gguf.PoolingType.LAST)
    qtype = {
        "f32": gguf.GGMLQuantizationType.F32,
        "f16": gguf.GGMLQuantizationType.F16,
        "q8_0": gguf.GGMLQuantizationType.Q8_0,
    }[spec.ftype]
    w.add_file_type({"f32": 0, "f16": 1, "q8_0": 7}[spec.ftype])
    # tokenizer: the real Qwen BPE vocabulary
    eot = vocab.token_id(EOT)
    types = [gguf.TokenType.NORMAL] * vocab.n_regular + [
        gguf.TokenType.USER_DEFINED if t in QWEN3_USER_DEFINED else gguf.TokenType.CONTROL
        for t in vocab.tokens[vocab.n_regular :]
    ]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(vocab.tokens)
    w.add_token_types(types)
    w.add_token_merges(vocab.merges)
    w.add_bos_token_id(eot)
    w.add_eos_token_id(vocab.token_id("<|im_end|>") if spec.kind in ("reranker", "chat") else eot)
    if spec.kind == "chat":
        w.add_chat_template(QWEN3_CHAT_TEMPLATE)
    w.add_pad_token_id(eot)
    w.add_add_bos_token(False)
    w.add_add_eos_token(spec.add_eos and spec.kind == "embedding")
    for name, arr in weights.items():
        keep_f32 = arr.ndim == 1  # norms stay F32, as llama.cpp's converter does
        if keep_f32 or qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(gguf_name(name), arr.astype(np.float32))
        elif qtype == gguf.GGMLQuantizationType.F16:
            w.add_tensor(gguf_name(name), arr.astype(np.float16))
        else:
            q = gguf.quants.quantize(arr, qtype)
            w.add_tensor(gguf_name(name), q, raw_shape=q.shape, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def build(spec: ModelSpec = ModelSpec(), directory: Path | None = None) -> Path:
    """Path to the GGUF for `spec`, made once and cached (keyed by spec and generator version)."""
    directory = directory or cache_dir()
    path = directory / f"qwen3-{spec.kind}-{spec.key()}.gguf"
    if not path.exists():
        vocab = load_qwen3_vocab()
        weights = random_weights(spec.shape, vocab.size, spec.seed)
        tmp = path.with_suffix(".part")
        write_gguf(tmp, spec, weights, vocab)
        tmp.replace(path)
    return path


def hf_model(spec: ModelSpec):
    """transformers' own Qwen3 over the same random weights (float32, eval mode)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3Model

    vocab = load_qwen3_vocab()
    s = spec.shape
    config = Qwen3Config(
        vocab_size=vocab.size,
        hidden_size=s.hidden,
        intermediate_size=s.ffn,
        num_hidden_layers=s.n_layer,
        num_attention_heads=s.n_head,
        num_key_value_heads=s.n_head_kv,
        head_dim=s.head_dim,
        max_position_embeddings=s.context,
        rope_theta=s.rope_theta,
        rms_norm_eps=s.rms_eps,
        tie_word_embeddings=True,
        attn_implementation="eager",
        torch_dtype="float32",
    )
    weights = random_weights(s, vocab.size, spec.seed)
    state = {k: torch.from_numpy(v) for k, v in weights.items()}
    if spec.kind == "reranker":
        model = Qwen3ForCausalLM(config)
        model.load_state_dict({**state, "lm_head.weight": state["model.embed_tokens.weight"]}, strict=True)
    else:
        model = Qwen3Model(config)
        model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()}, strict=True)
    return model.eval()
