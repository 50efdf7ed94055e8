"""Lexical sparse vectors for hybrid search: hashed word tokens and CJK n-grams.

Documents get BM25-style term weights (saturated term frequency with length
normalization); queries get weight 1 per distinct term. The inverse document
frequency is applied by the engine: both adapters create the sparse vector with
Qdrant's IDF modifier (supported by Qdrant server, ``qdrant-client`` local mode and
``qdrant-edge``), so the score of a document is ``sum(idf(t) * weight(t))`` over the
query's terms: BM25.

Tokens (after NFKC normalization, lowercased):

* outside CJK scripts, every ``\\w`` run is a token; identifiers are also split into
  their snake_case / camelCase / letter-digit parts (``parseHTTPResponse2`` gives
  ``parsehttpresponse2``, ``parse``, ``http``, ``response``, ``2``);
* CJK runs (Han, Hiragana, Katakana, Hangul), which have no spaces to split on, give
  every character and every pair of adjacent characters.

Scripts whose words carry combining marks (Devanagari…) split at the marks, and Thai
(no spaces, not CJK) stays in long runs: imperfect, but the same on both sides, so terms
still meet.

Indices are the first 31 bits of the token's BLAKE2b digest: stable across processes,
machines and Python versions (unlike ``hash()``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

# BM25 term-frequency saturation and length normalization (Qdrant's Bm25 defaults).
BM25_K1 = 1.2
BM25_B = 0.75
# Expected length of a document in terms (words plus CJK characters).
AVG_DOC_TERMS = 256.0
# Longer tokens are noise (base64, hashes, minified code) and are dropped.
MAX_TOKEN_CHARS = 64
INDEX_MASK = 0x7FFFFFFF
HASH_BYTES = 4
# distinct tokens whose index is remembered (vocabularies repeat heavily)
TOKEN_CACHE_SIZE = 1 << 17

_CJK_CHARS = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u3005\u3007"  # 々 〇
    "\u3040-\u309f"  # Hiragana
    "\u30a0-\u30ff"  # Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0003134f"  # CJK extensions B-G
)
_TOKEN_RE = re.compile(rf"([{_CJK_CHARS}]+)|([^\W{_CJK_CHARS}]+)")


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Sorted unique ``indices`` with their ``values``."""

    indices: tuple[int, ...] = ()
    values: tuple[float, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.indices


@lru_cache(maxsize=TOKEN_CACHE_SIZE)
def token_index(token: str) -> int:
    """Stable 31-bit index of a token."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=HASH_BYTES).digest()
    return int.from_bytes(digest, "big") & INDEX_MASK


def identifier_parts(word: str) -> list[str]:
    """Split an identifier on underscores, lower→upper, ``ABCDef`` and letter↔digit edges."""
    parts: list[str] = []
    for piece in word.split("_"):
        start = 0
        for i in range(1, len(piece)):
            prev, cur = piece[i - 1], piece[i]
            nxt = piece[i + 1] if i + 1 < len(piece) else ""
            if (
                (prev.islower() and cur.isupper())
                or (prev.isdigit() != cur.isdigit())
                or (prev.isupper() and cur.isupper() and nxt.islower())
            ):
                parts.append(piece[start:i])
                start = i
        if piece:
            parts.append(piece[start:])
    return parts


@lru_cache(maxsize=TOKEN_CACHE_SIZE)
def word_tokens(word: str) -> tuple[str, ...]:
    """A word's tokens: the whole, lowercased, then its identifier parts if it has several."""
    if len(word) > MAX_TOKEN_CHARS:
        return ()
    whole = word.strip("_").lower()
    plain = word.isdigit() or (word.isalpha() and (word.isupper() or word[1:] == word[1:].lower()))
    parts = () if plain else tuple(p.lower() for p in identifier_parts(word))
    return ((whole,) if whole else ()) + (parts if len(parts) > 1 else ())


def _cjk_grams(run: str) -> list[str]:
    return [*run, *(run[i : i + 2] for i in range(len(run) - 1))]


def tokenize(text: str) -> tuple[list[str], int]:
    """The lexical tokens of ``text`` (with repeats) and its length in terms."""
    tokens: list[str] = []
    n_terms = 0
    for run, word in _TOKEN_RE.findall(unicodedata.normalize("NFKC", text)):
        if run:
            tokens += _cjk_grams(run)
            n_terms += len(run)
        elif found := word_tokens(word):
            tokens += found
            n_terms += 1
    return tokens, n_terms


def _indexed(weights: dict[int, float]) -> SparseVector:
    indices = tuple(sorted(weights))
    return SparseVector(indices, tuple(weights[i] for i in indices))


def sparse_vector(text: str) -> SparseVector:
    """Document-side vector: BM25 term weights (IDF comes from the engine)."""
    tokens, n_terms = tokenize(text)
    if not tokens:
        return SparseVector()
    counts = Counter(token_index(token) for token in tokens)
    norm = BM25_K1 * (1.0 - BM25_B + BM25_B * n_terms / AVG_DOC_TERMS)
    return _indexed({i: tf * (BM25_K1 + 1.0) / (tf + norm) for i, tf in counts.items()})


def query_sparse_vector(text: str) -> SparseVector:
    """Query-side vector: weight 1 per distinct term."""
    tokens, _ = tokenize(text)
    return _indexed({token_index(token): 1.0 for token in tokens})
