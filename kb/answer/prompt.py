"""The chat messages of an answer: the rules, the numbered passages and the question.

The model is told to use the passages only, to cite each claim as [n], to reply with one fixed
sentence when the passages do not hold the answer, and to answer in the question's language. The
fixed sentence is also what kb says itself when nothing relevant was retrieved, in that language.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from kb.answer.passages import Passage, passages_text

# what kb says when the passages do not hold the answer, by the question's script
NO_ANSWER = {
    "en": "The documents found do not contain the answer to this question.",
    "zh": "检索到的文档中没有这个问题的答案。",
    "ja": "見つかった文書には、この質問の答えがありません。",
    "ko": "찾은 문서에는 이 질문에 대한 답이 없습니다.",
}

SYSTEM = (
    "You answer questions using only the numbered passages the user gives you.\n"
    "- Cite the passage each statement comes from with its number in square brackets, like [1] or [2].\n"
    "- Use only facts, numbers, names and dates that are written in the passages; add nothing of your own.\n"
    "- If the passages do not contain the answer, reply exactly: {no_answer}\n"
    "- Answer in {language}, the language of the question. Be brief."
)
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean"}


def script_language(text: str) -> str:
    """``zh``, ``ja`` or ``ko`` when the text is mostly written in that script, else ``en``.

    Kana marks Japanese and Hangul Korean even among Han characters; Latin-script languages are
    not told apart (the model is asked to answer in the question's language whatever it is).
    """
    han = kana = hangul = latin = 0
    for ch in text:
        name = unicodedata.name(ch, "")
        if name.startswith("CJK UNIFIED"):
            han += 1
        elif name.startswith(("HIRAGANA", "KATAKANA")):
            kana += 1
        elif name.startswith("HANGUL"):
            hangul += 1
        elif ch.isalpha():
            latin += 1
    if kana and kana + han >= latin:
        return "ja"
    if hangul and hangul >= latin:
        return "ko"
    if han and han * 2 >= latin:  # one Han character says more than one Latin letter
        return "zh"
    return "en"


def no_answer(question: str) -> str:
    return NO_ANSWER[script_language(question)]


def build_messages(question: str, passages: Sequence[Passage]) -> list[dict[str, str]]:
    """The system and user messages for a chat model."""
    lang = script_language(question)
    language = LANGUAGE_NAMES[lang] if lang != "en" else "the same language as the question"
    system = SYSTEM.format(no_answer=NO_ANSWER[lang], language=language)
    user = f"Passages:\n\n{passages_text(passages)}\n\nQuestion: {question.strip()}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def prompt_overhead(question: str) -> str:
    """The messages' text without passages, to measure what the passages may take of the context."""
    return "\n".join(m["content"] for m in build_messages(question, []))
