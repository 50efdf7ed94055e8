"""Is extracted text readable, or the garbage a PDF font without a Unicode map produces?

pypdf turns glyph codes into characters through a font's ToUnicode map. Without one it guesses,
and for CJK fonts the guess is garbage of three recognisable kinds:

* Identity-H fonts: the glyph ids become code points, so small ids give control characters,
  unassigned code points, and larger ids a letter soup that hops between Latin, Greek, Cyrillic,
  Armenian, Thai, Hangul jamo … from one character to the next (``ĖҐ\\x84ȍôϹΛϊԹ``);
* legacy double-byte encodings (GBK, Big5, Shift-JIS, EUC-KR) read as WinAnsi: every byte becomes
  an accented Latin-1 letter or a Windows-1252 symbol (``ÏòÁ¿Êý¾Ý¿â``);
* symbol fonts: everything lands in the Private Use Area.

:func:`assess` measures each of these on the non-space characters of a text and names the first
that crosses its threshold. Real text in any script stays far below every threshold: a script
change between two adjacent letters happens only at word edges (Han, kana and Hangul count as one
script, and their change to and from Latin is free), and no language comes near writing 40% of
its letters in the Latin-1 supplement (Icelandic, the densest, stays around 30%).

Not caught: a subset font whose few glyph ids all fall in printable ASCII (ids 32-126) gives a
punctuation-and-digit soup that none of these signals sees; such a page is indexed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Below this many non-space characters there is too little evidence: never call it garbage.
MIN_CHARS = 12
# Control, unassigned, surrogate and U+FFFD characters among non-space characters.
MAX_JUNK_SHARE = 0.10
# Private-use characters among non-space characters (bullets from symbol fonts stay far below).
MAX_PRIVATE_SHARE = 0.50
# Junk and private-use characters together.
MAX_UNREADABLE_SHARE = 0.25
# Letters from the Latin-1 supplement or the Windows-1252 extras among all letters, when
# fewer than this share of the words (letter runs of two or more) are plain ASCII.
MAX_LATIN1_LETTER_SHARE = 0.40
MIN_ASCII_WORD_SHARE = 0.34
MIN_LETTERS_FOR_LATIN1 = 8
# Adjacent letter pairs whose scripts differ, among all adjacent letter pairs.
MAX_SCRIPT_SWITCH_SHARE = 0.25
MIN_PAIRS_FOR_SWITCHES = 10

REASON_CJK_IDENTITY = "likely a CJK font without ToUnicode"
REASON_LEGACY_BYTES = "likely a CJK font in a legacy encoding without ToUnicode"
REASON_PRIVATE_USE = "private-use characters: likely a symbol or CJK font without ToUnicode"

_END_OF_LATIN = "\u0300"  # below: Basic Latin to Latin Extended-B, IPA, spacing modifier letters
_WHITESPACE_CONTROLS = frozenset("\t\n\r\x0b\x0c")
# Letters Windows-1252 puts in 0x80-0x9F, which pypdf uses for WinAnsi fonts.
_CP1252_LETTERS = frozenset("ŠŒŽšœžŸƒ")
# Scripts written without spaces that mix freely with each other and with Latin.
_EAST_ASIAN = frozenset(
    {"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO", "IDEOGRAPHIC", "FULLWIDTH", "HALFWIDTH"}
)


@dataclass(frozen=True, slots=True)
class TextQuality:
    """Shares measured over a text's non-space characters, and the verdict."""

    chars: int
    junk_share: float
    private_share: float
    latin1_letter_share: float
    ascii_word_share: float
    script_switch_share: float
    reason: str | None  # None: readable

    @property
    def readable(self) -> bool:
        return self.reason is None


def _script(ch: str) -> str:
    """A coarse script name: the first word of the character's Unicode name, East Asian folded."""
    if ch < _END_OF_LATIN:  # Latin blocks, IPA and modifier letters (ª, º, µ, ˈ name no script)
        return "LATIN"
    name = unicodedata.name(ch, "")
    word = name.split(" ", 1)[0] if name else "UNKNOWN"
    return "EAST_ASIAN" if word in _EAST_ASIAN else word


def _is_latin1_letter(ch: str) -> bool:
    return ("\u00c0" <= ch <= "\u00ff" and ch not in "×÷") or ch in "ªºµ" or ch in _CP1252_LETTERS


def _ascii_word_share(text: str) -> float:
    """Share of letter runs (two letters or more) made only of ASCII letters; 1.0 when there are none."""
    words = ascii_words = 0
    run: list[str] = []
    for ch in text + " ":
        if unicodedata.category(ch)[0] in "LM":
            run.append(ch)
            continue
        if len(run) >= 2:
            words += 1
            ascii_words += all(c.isascii() for c in run)
        run = []
    return ascii_words / words if words else 1.0


def _kind(ch: str) -> str:
    """What one character counts as: space, junk, private, latin1 (a letter), letter, mark or other."""
    if ch.isspace():
        return "space"
    cat = unicodedata.category(ch)
    if ch == "\ufffd" or cat in ("Cn", "Cs") or (cat == "Cc" and ch not in _WHITESPACE_CONTROLS):
        return "junk"
    if cat == "Co":
        return "private"
    if cat.startswith("L"):
        return "latin1" if _is_latin1_letter(ch) else "letter"
    return "mark" if cat.startswith("M") else "other"


# ASCII control characters that are neither whitespace nor counted as space by str.isspace()
_ASCII_JUNK = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# What the code table turns non-letters into: all whitespace, so that str.split() breaks letter runs
# at them; combining marks are deleted, so that they never break a run.
_SPACE, _JUNK, _PRIVATE, _OTHER = " ", "\n", "\t", "\r"
_FREE_SWITCH = frozenset({"LATIN", "EAST_ASIAN"})
_MAX_TABLE = 1 << 16  # characters the table remembers (a page has a few hundred distinct ones)


class _Codes(dict):
    """A ``str.translate`` table filled as characters are met: a letter becomes one private-use
    character per script (Latin-1 letters get their own), anything else what its kind says.
    A text is then measured by counting in C, however long it is."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: dict[tuple[str, bool], str] = {}  # (script, latin1) -> code
        self.names: dict[str, str] = {}  # code -> script

    def code(self, script: str, latin1: bool = False) -> str:
        key = (script, latin1)
        if key not in self.scripts:
            self.scripts[key] = chr(0x100000 + len(self.scripts))
            self.names[self.scripts[key]] = script
        return self.scripts[key]

    def __missing__(self, number: int) -> str | None:
        ch = chr(number)
        kind = _kind(ch)
        value: str | None
        if kind in ("letter", "latin1"):
            value = self.code(_script(ch), kind == "latin1")
        else:
            value = {"space": _SPACE, "junk": _JUNK, "private": _PRIVATE, "mark": None}.get(kind, _OTHER)
        if len(self) < _MAX_TABLE:
            self[number] = value
        return value


_CODES = _Codes()
_LATIN1 = _CODES.code("LATIN", latin1=True)


def _switch_counts(codes: str) -> tuple[int, int]:
    """(pairs, switches) over adjacent letters of a translated text (marks are gone, so skipped)."""
    runs = codes.split()
    pairs = sum(map(len, runs)) - len(runs)
    present = set(codes) - {_SPACE, _JUNK, _PRIVATE, _OTHER}
    switches = 0
    if pairs and len(present) > 1:
        names = _CODES.names
        for a in present:
            for b in present:
                if names[a] != names[b] and {names[a], names[b]} != _FREE_SWITCH:
                    switches += codes.count(a + b)  # a != b: occurrences cannot overlap
    return pairs, switches


def assess(text: str) -> TextQuality:
    """Measure ``text`` and give the reason it is unreadable, or None when it reads as real text."""
    codes = text.translate(_CODES)
    spaces, junk, private = codes.count(_SPACE), codes.count(_JUNK), codes.count(_PRIVATE)
    n = len(text) - spaces
    letters = len(codes) - spaces - junk - private - codes.count(_OTHER)
    latin1 = codes.count(_LATIN1)
    pairs, switches = _switch_counts(codes)

    junk_share = junk / n if n else 0.0
    private_share = private / n if n else 0.0
    latin1_share = latin1 / letters if letters else 0.0
    switch_share = switches / pairs if pairs else 0.0
    word_share = _ascii_word_share(text) if latin1_share >= MAX_LATIN1_LETTER_SHARE else 1.0

    reason: str | None = None
    if n >= MIN_CHARS:
        if private_share >= MAX_PRIVATE_SHARE:
            reason = REASON_PRIVATE_USE
        elif (
            junk_share >= MAX_JUNK_SHARE
            or junk_share + private_share >= MAX_UNREADABLE_SHARE
            or (pairs >= MIN_PAIRS_FOR_SWITCHES and switch_share >= MAX_SCRIPT_SWITCH_SHARE)
        ):
            reason = REASON_CJK_IDENTITY
        elif (
            letters >= MIN_LETTERS_FOR_LATIN1
            and latin1_share >= MAX_LATIN1_LETTER_SHARE
            and word_share < MIN_ASCII_WORD_SHARE
        ):
            reason = REASON_LEGACY_BYTES
    return TextQuality(n, junk_share, private_share, latin1_share, word_share, switch_share, reason)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_NON_LETTER_BYTES = bytes(b for b in range(128) if not chr(b).isalpha())
_SAFE_KINDS = frozenset({"space", "mark", "other"})
_safety: dict[str, int] = {}  # 0: counts against nothing; 1: a Latin letter; 2: anything else


def _safety_of(ch: str) -> int:
    known = _safety.get(ch)
    if known is None:
        kind = _kind(ch)
        known = (
            0 if kind in _SAFE_KINDS else 1 if kind in ("letter", "latin1") and _script(ch) == "LATIN" else 2
        )
        if len(_safety) < _MAX_TABLE:
            _safety[ch] = known
    return known


def _surely_readable(text: str) -> bool:
    """A cheap proof that no signal can fire: no junk, no private use, every letter Latin (so no
    script switch), and too few non-ASCII characters for the Latin-1 share, whatever they are."""
    if _ASCII_JUNK.search(text) is not None:
        return False
    if text.isascii():
        return True
    runs = _NON_ASCII.findall(text)
    worst = max(map(_safety_of, set("".join(runs))))
    if worst == 0:  # curly quotes, dashes, symbols: ASCII letters only
        return True
    if worst == 2:
        return False
    ascii_letters = len(text.encode("ascii", "ignore").translate(None, _NON_LETTER_BYTES))
    return sum(map(len, runs)) < MAX_LATIN1_LETTER_SHARE * ascii_letters


def unreadable_reason(text: str) -> str | None:
    """Why ``text`` is garbage, or None when it is readable (or too short to judge)."""
    return None if _surely_readable(text) else assess(text).reason
