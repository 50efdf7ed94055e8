"""The pure parts of answers: packing, citations, the grounding check, the prompt, the language."""

from __future__ import annotations

import pytest

from kb.answer.citations import citations, cited_numbers, drop_unknown
from kb.answer.flow import WITHHELD, AnswerOptions, finish
from kb.answer.generate import without_thinking
from kb.answer.grounding import check, claims_of, numbers_in, split_sentences
from kb.answer.passages import pack
from kb.answer.prompt import NO_ANSWER, build_messages, no_answer, script_language
from kb.contract import SearchHit
from tests.helpers.answers import APOLLO, KETTLE, TOASTER


def hit(rank: int, text: str, score: float, source: str, **where) -> SearchHit:
    return SearchHit(
        rank=rank, id=f"id-{rank}", score=score, source=source, kind="markdown", text=text, **where
    )


HITS = [
    hit(2, TOASTER, 0.7, "kitchen/toaster.md", line_start=3, line_end=3),
    hit(1, KETTLE, 0.9, "kitchen/kettle.md", line_start=3, line_end=3),
    hit(3, APOLLO, 0.5, "manual.pdf", page=4),
]


def words(text: str) -> int:
    return len(text.split())


def test_pack_orders_by_score_numbers_from_one_and_never_cuts_a_passage():
    passages = pack(HITS, budget=10_000, count_tokens=words)
    assert [p.hit.source for p in passages] == ["kitchen/kettle.md", "kitchen/toaster.md", "manual.pdf"]
    assert [p.number for p in passages] == [1, 2, 3]
    assert passages[2].label == "manual.pdf, p. 4"
    assert passages[0].block().startswith("[1] (kitchen/kettle.md, lines 3-3)\n")
    # a budget that holds the first two blocks exactly: the third is left out whole
    budget = sum(words(p.block()) + 2 for p in passages[:2])
    packed = pack(HITS, budget, words)
    assert [p.hit.text for p in packed] == [KETTLE, TOASTER]
    # the best passage too long, a shorter one still fits: skipped, not cut
    long = hit(9, "word " * 500, 0.99, "big.md")
    packed = pack([long, *HITS], budget, words)
    assert all(p.hit.source != "big.md" for p in packed) and packed[0].number == 1
    assert pack(HITS, budget=5, count_tokens=words) == []
    # the same chunk retrieved twice is packed once
    assert len(pack([HITS[1], HITS[1]], 10_000, words)) == 1


def test_citations_are_mapped_and_unknown_numbers_removed():
    passages = pack(HITS, 10_000, words)
    text = "It takes forty seconds [1][7]. Toast takes three minutes [2, 9]. Nothing here [12]."
    cleaned, removed = drop_unknown(text, [p.number for p in passages])
    assert cleaned == "It takes forty seconds [1]. Toast takes three minutes [2]. Nothing here."
    assert removed == [7, 9, 12]
    assert cited_numbers(cleaned) == [1, 2]
    mapped = citations(cleaned, passages)
    assert [(c.number, c.source, c.locator) for c in mapped] == [
        (1, "kitchen/kettle.md", "lines 3-3"),
        (2, "kitchen/toaster.md", "lines 3-3"),
    ]
    assert cited_numbers("见【3】和［1］。") == [3, 1]


def test_numbers_are_normalised_across_forms():
    assert {"40", "1"} <= numbers_in("a litre in forty seconds, one time")
    assert "1299" in numbers_in("costs 1,299 yuan") and "1299" in numbers_in("１２９９元")
    assert "1200" in numbers_in("功率是一千二百瓦") and "45" in numbers_in("四十五秒")
    assert {"2024", "3", "5"} <= numbers_in("on 2024-03-05")
    assert claims_of("The kettle takes 40 seconds [1].").numbers == ("40",)  # the citation is no claim


def test_grounding_flags_the_invented_number_and_keeps_the_supported_sentence():
    passages = pack(HITS, 10_000, words)
    good = check("The kettle boils water in 40 seconds [1].", passages)
    assert good.sentences[0].supported and not good.withheld
    mixed = check("The kettle boils water in 48 seconds [1]. The toaster has two slots [2].", passages)
    assert [s.supported for s in mixed.sentences] == [False, True]
    assert mixed.sentences[0].unsupported == ("48",)
    assert not mixed.withheld  # half unsupported: marked, kept
    # a claim must be in a passage the sentence cites: the toaster's number cited to the kettle fails
    wrong_source = check("The toaster has two slots [1].", passages)
    assert wrong_source.sentences[0].supported is False


def test_a_passage_label_the_model_copies_is_no_claim_and_no_evidence():
    passages = pack(HITS, 10_000, words)  # [1] (kitchen/kettle.md, lines 3-3)
    echoed = check("[1] (kitchen/kettle.md, lines 3-3)\nThe kettle boils water in forty seconds.", passages)
    assert [s.supported for s in echoed.sentences] == [None, True]
    # the label's line numbers support nothing the model states itself
    invented = check("The kettle (kitchen/kettle.md, lines 3-3) takes 3 minutes [1].", passages)
    assert invented.sentences[0].unsupported == ("3",)


def test_names_quotes_and_cjk_are_checked():
    passages = pack(HITS, 10_000, words)
    assert check("It was Neil Armstrong and Buzz Aldrin [3].", passages).sentences[0].supported
    invented = check("It was Yuri Gagarin in 1961 [3].", passages).sentences[0]
    assert set(invented.unsupported) == {"Yuri", "Gagarin", "1961"}
    assert check('The manual says "first people to walk on the Moon" [3].', passages).sentences[0].supported
    assert not check('The manual says "first dogs on Mars" [3].', passages).sentences[0].supported
    zh = pack([hit(1, "水壶四十秒烧开一升水。型号是「青龙白虎」。", 0.9, "zh.md")], 1000, len)
    assert check("水壶40秒烧开水[1]。", zh).sentences[0].supported
    assert not check("水壶四十八秒烧开水[1]。", zh).sentences[0].supported
    assert check("型号是「青龙白虎」[1]。", zh).sentences[0].supported
    assert split_sentences("它很快[1]。真的！Yes. Next [2].") == [
        "它很快[1]。",
        "真的！",
        "Yes.",
        "Next [2].",
    ]


def test_a_mostly_unsupported_answer_is_withheld_with_the_passages():
    passages = pack(HITS, 10_000, words)
    opts = AnswerOptions()
    event = finish("The capital of France is Paris.", "What is the capital of France?", passages, opts, {})
    assert event["withheld"] and event["text"] == WITHHELD
    assert event["draft"] == "The capital of France is Paris."
    assert event["grounding"]["sentences"][0]["unsupported"] == ["France", "Paris"]
    kept = finish("The kettle takes forty seconds [1][5].", "How long?", passages, opts, {})
    assert not kept["withheld"] and kept["text"] == "The kettle takes forty seconds [1]."
    assert kept["removed_citations"] == [5] and kept["citations"][0]["source"] == "kitchen/kettle.md"
    refusal = finish(NO_ANSWER["en"], "How tall is the kettle?", passages, opts, {})
    assert refusal["no_answer"] and not refusal["withheld"]


@pytest.mark.parametrize(
    ("question", "lang"),
    [("How long does it boil?", "en"), ("水壶多久烧开？", "zh"), ("やかんは何秒で沸きますか", "ja"),
     ("주전자는 몇 초 걸리나요?", "ko"), ("Wie lange kocht der Kessel?", "en")],
)  # fmt: skip
def test_the_question_language_picks_the_no_answer_sentence(question, lang):
    assert script_language(question) == lang
    assert no_answer(question) == NO_ANSWER[lang]


def test_messages_hold_exactly_the_passages_with_their_numbers():
    passages = pack(HITS, 10_000, words)
    system, user = build_messages("水壶多久烧开？", passages)
    assert "Chinese" in system["content"] and NO_ANSWER["zh"] in system["content"]
    body = user["content"]
    assert body.count("\n[") + body.startswith("[") == 3
    for p in passages:
        assert f"[{p.number}] ({p.label})\n{p.hit.text}" in body
    assert body.endswith("Question: 水壶多久烧开？")


def test_a_think_block_is_dropped_from_the_stream():
    def stream(*pieces):
        return list(without_thinking(iter(pieces)))

    assert "".join(stream("<thi", "nk>\nhmm</th", "ink>\n\nIt is", " 40 [1].")) == "It is 40 [1]."
    assert "".join(stream("It is", " 40.")) == "It is 40."
    assert "".join(stream("<", "b>bold</b>")) == "<b>bold</b>"
    assert stream("<think>never closed") == []
