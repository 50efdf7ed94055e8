"""The grounding check: each number, date, name and quoted phrase of an answer must be written in a
passage the sentence cites. Cheap and deterministic: normalised text and token matching, no model.

- **Sentences** end at ``. ! ?`` followed by a space and at ``。！？`` (CJK text has no spaces), and
  at line ends.
- **Claims** of a sentence: numbers (digits, English number words, Chinese numerals; ``1,000`` is
  ``1000``, ``forty`` is ``40``), quoted phrases (``"…"``, ``“…”``, ``「…」``, ``『…』``, ``«…»``),
  and names: capitalised words and acronyms not opening the sentence, and code identifiers
  (``snake_case``, ``CamelCase``, ``dotted.names``). Citation markers are not claims, nor is a
  passage's label the model copies from the prompt (``(docs/a.md, lines 1-3)``).
- **Which passages**: those the sentence cites; a sentence citing none is checked against every
  passage the answer cites (or, when it cites none, every passage given).
- A claim is **supported** when a passage holds it: the same number among the passage's numbers,
  the name as a whole word (case-insensitive), the quoted phrase as normalised text. Matching is
  on NFKC-normalised, case-folded text, so full-width digits and letters match their ASCII forms.

A sentence without claims is neither supported nor unsupported. The answer is **withheld** when
the share of claim-bearing sentences that are unsupported exceeds the threshold.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kb.answer.citations import MARKER, cited_numbers, strip_markers
from kb.answer.passages import Passage

SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")
QUOTED = re.compile(
    r'"([^"\n]{2,200})"|“([^”\n]{2,200})”|「([^」\n]{1,200})」|『([^』\n]{1,200})』|«([^»\n]{2,200})»'
)
DIGITS = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])|\d+")
WORD = re.compile(r"[^\W_](?:[\w'’-]*\w)?|\w+")
IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z0-9]*(?:(?:_|\.)[A-Za-z0-9_]+)+\b|\b[a-z]+[A-Z]\w*\b")
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
# capitalised words that open clauses or stand for the reader, not names
NOT_NAMES = {"i", "i'm", "i've", "i'd", "i'll", "ok", "yes", "no", "the", "a", "an"}

UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
NUMBER_WORD = re.compile(r"\b(?:" + "|".join([*UNITS, *TENS, *SCALES]) + r")(?:[\s-]+(?:and[\s-]+)?(?:"
                         + "|".join([*UNITS, *TENS, *SCALES]) + r"))*\b", re.IGNORECASE)  # fmt: skip
CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
CN_SCALES = {"十": 10, "百": 100, "千": 1000, "万": 10**4, "亿": 10**8}
CN_NUMBER = re.compile("[" + "".join(CN_DIGITS) + "".join(CN_SCALES) + "]{1,12}")


_PLAIN = str.maketrans("’‘–—‐", "''---")  # typographic quotes and dashes made plain


def normalise(text: str) -> str:
    """NFKC, case-folded, typographic quotes and dashes made plain, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.translate(_PLAIN)
    return " ".join(text.split())


def _number_value(token: str) -> str:
    """A digit token as a canonical string: thousands separators dropped, ``40.0`` is ``40``."""
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", token):
        token = token.replace(",", "")
    if re.fullmatch(r"\d+\.\d+", token):
        token = token.rstrip("0").rstrip(".")
    return token.lstrip("0") or "0" if token.isdigit() else token


def _words_value(phrase: str) -> int | None:
    total, current = 0, 0
    for word in re.split(r"[\s-]+", phrase.lower()):
        if word == "and":
            continue
        if word in UNITS:
            current += UNITS[word]
        elif word in TENS:
            current += TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in SCALES:
            total += max(current, 1) * SCALES[word]
            current = 0
    return total + current


def _chinese_value(text: str) -> int | None:
    if len(text) == 1 and text in "万亿":  # a scale alone is a word, not a number
        return None
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in CN_DIGITS:
            digit = CN_DIGITS[ch] if digit is None else digit * 10 + CN_DIGITS[ch]
        elif ch in ("万", "亿"):
            total = (total + section + (digit or 0)) * CN_SCALES[ch]
            section, digit = 0, None
        else:
            section += (1 if digit is None else digit) * CN_SCALES[ch]
            digit = None
    return total + section + (digit or 0)


def stated_numbers(text: str) -> list[str]:
    """The numbers ``text`` states, canonical, in this order: digits (read after NFKC), English
    number words, Chinese numerals."""
    found = [_number_value(m.group(0)) for m in DIGITS.finditer(unicodedata.normalize("NFKC", text))]
    found += [str(v) for m in NUMBER_WORD.finditer(text) if (v := _words_value(m.group(0))) is not None]
    found += [str(v) for m in CN_NUMBER.finditer(text) if (v := _chinese_value(m.group(0))) is not None]
    return found


def numbers_in(text: str) -> set[str]:
    """Every number ``text`` states, canonical (digits, English words, Chinese numerals)."""
    text = unicodedata.normalize("NFKC", text)
    found = set(stated_numbers(text))
    for m in re.finditer(r"\d+", text):  # parts too: "2024-03-05" also states 2024, 3 and 5
        found.add(_number_value(m.group(0)))
    return found


@dataclass(frozen=True, slots=True)
class Claims:
    numbers: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    quotes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.numbers or self.names or self.quotes)


def claims_of(sentence: str) -> Claims:
    """What in a sentence can be checked against a passage."""
    text = LIST_MARK.sub("", strip_markers(sentence)).strip()
    quotes = tuple(next(g for g in m.groups() if g) for m in QUOTED.finditer(text))
    numbers = stated_numbers(text)
    names = [m.group(0) for m in IDENTIFIER.finditer(text)]
    words = list(WORD.finditer(text))
    for i, m in enumerate(words):
        w = m.group(0)
        opening = i == 0 or text[words[i - 1].end() : m.start()].strip().endswith((":", '"', "“", "("))
        if CJK.search(w) or w.casefold() in NOT_NAMES or NUMBER_WORD.fullmatch(w):
            continue
        if w.isupper() and len(w) > 1 and w.isalpha() or (w[0].isupper() and not opening):
            names.append(w)
    return Claims(tuple(dict.fromkeys(numbers)), tuple(dict.fromkeys(names)), tuple(dict.fromkeys(quotes)))


class _Evidence:
    """One passage's text, prepared for the checks."""

    def __init__(self, text: str) -> None:
        self.text = normalise(text)
        self.numbers = numbers_in(text)

    def has_name(self, name: str) -> bool:
        n = normalise(name)
        if CJK.search(n):
            return n in self.text
        return re.search(r"(?<!\w)" + re.escape(n) + r"(?!\w)", self.text) is not None

    def has_quote(self, quote: str) -> bool:
        return normalise(quote).strip(" .,;:") in self.text


@dataclass(frozen=True, slots=True)
class SentenceCheck:
    text: str
    citations: tuple[int, ...]
    claims: Claims
    unsupported: tuple[str, ...] = ()

    @property
    def checked(self) -> bool:
        return bool(self.claims)

    @property
    def supported(self) -> bool | None:
        """True or False for a sentence with claims, None for one without."""
        return not self.unsupported if self.claims else None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citations": list(self.citations),
            "supported": self.supported,
            "unsupported": list(self.unsupported),
        }


@dataclass(frozen=True, slots=True)
class Grounding:
    sentences: tuple[SentenceCheck, ...] = field(default_factory=tuple)
    withheld: bool = False

    @property
    def checked(self) -> int:
        return sum(s.checked for s in self.sentences)

    @property
    def unsupported(self) -> int:
        return sum(s.supported is False for s in self.sentences)

    @property
    def supported_share(self) -> float | None:
        return None if not self.checked else 1 - self.unsupported / self.checked

    def to_json(self) -> dict[str, Any]:
        return {
            "sentences": [s.to_json() for s in self.sentences],
            "checked": self.checked,
            "unsupported": self.unsupported,
            "withheld": self.withheld,
        }


def split_sentences(text: str) -> list[str]:
    """Sentences and list items; a citation marker right after the full stop stays with its sentence."""
    text = re.sub(r"([.!?。！？])((?:" + MARKER.pattern + r")+)", r"\2\1", text)
    return [s.strip() for s in SENTENCE_END.split(text) if s and s.strip()]


def check(answer: str, passages: Sequence[Passage], withhold_above: float = 0.5) -> Grounding:
    """Check each sentence of ``answer`` against the passages it cites (unknown numbers ignored)."""
    evidence = {p.number: _Evidence(p.hit.text) for p in passages}
    cited_anywhere = [n for n in cited_numbers(answer) if n in evidence] or list(evidence)
    out = []
    for sentence in split_sentences(answer):
        own = tuple(n for n in cited_numbers(sentence) if n in evidence)
        claims = claims_of(_without_labels(sentence, passages))
        pool = [evidence[n] for n in (own or cited_anywhere)]
        missing = _unsupported(claims, pool)
        out.append(SentenceCheck(sentence, own, claims, missing))
    result = Grounding(tuple(out))
    share = result.supported_share
    return Grounding(result.sentences, share is not None and 1 - share > withhold_above)


def _without_labels(sentence: str, passages: Sequence[Passage]) -> str:
    """The sentence less the passages' labels it repeats (``(docs/a.md, lines 1-3)``): a label the model
    copies from the prompt says where a passage lies, not a claim (its line numbers are no evidence)."""
    for p in passages:
        sentence = sentence.replace(f"({p.label})", "")
    return sentence


def _unsupported(claims: Claims, pool: Iterable[_Evidence]) -> tuple[str, ...]:
    pool = list(pool)
    missing = [n for n in claims.numbers if not any(n in e.numbers for e in pool)]
    missing += [n for n in claims.names if not any(e.has_name(n) for e in pool)]
    missing += [f'"{q}"' for q in claims.quotes if not any(e.has_quote(q) for e in pool)]
    return tuple(missing)
