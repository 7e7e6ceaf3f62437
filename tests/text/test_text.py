"""Sentence splitting, ranking and the length-bounded summariser."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from aesoperator.text.bm25 import BM25
from aesoperator.text.language import detect_language
from aesoperator.text.rank import Vectors, lexrank, mmr
from aesoperator.text.sentences import split_sentences
from aesoperator.text.summarize import rank_sentences, summarize, truncate

_WS = re.compile(r"\s+")


def test_split_handles_abbreviations_numbers_and_initials() -> None:
    text = (
        "Dr. Smith paid $3.50 for e.g. apples at 5 p.m. on Monday. J. R. R. Tolkien wrote it. "
        "Visit example.org today! Was it the U.S. team? Yes."
    )
    assert split_sentences(text) == [
        "Dr. Smith paid $3.50 for e.g. apples at 5 p.m. on Monday.",
        "J. R. R. Tolkien wrote it.",
        "Visit example.org today!",
        "Was it the U.S. team?",
        "Yes.",
    ]


def test_split_non_latin_scripts() -> None:
    assert split_sentences("東京は大きい。大阪も大きい！本当？") == [
        "東京は大きい。",
        "大阪も大きい！",
        "本当？",
    ]
    assert split_sentences("Привет, мир. Как дела? Хорошо.") == [
        "Привет, мир.",
        "Как дела?",
        "Хорошо.",
    ]
    assert len(split_sentences("नमस्ते। आप कैसे हैं?")) == 2


def test_split_breaks_paragraphs_and_list_items_and_joins_hard_wraps() -> None:
    text = "# Heading\nFirst para ends here.\n\n- item one\n- item two\n" + (
        "this line is hard wrapped in the middle of a long sentence that\ncontinues here."
    )
    assert split_sentences(text) == [
        "# Heading",
        "First para ends here.",
        "- item one",
        "- item two",
        "this line is hard wrapped in the middle of a long sentence that continues here.",
    ]


@given(st.text(max_size=400))
@settings(max_examples=200, deadline=None)
def test_sentences_are_verbatim_pieces_of_the_text(text: str) -> None:
    flat = _WS.sub(" ", text)
    for sentence in split_sentences(text):
        assert sentence and sentence == sentence.strip()
        assert sentence in flat


def test_bm25_prefers_matching_documents() -> None:
    docs = [
        "Qubits in superconducting circuits need cryogenic cooling.",
        "The recipe needs two eggs and flour.",
        "Superconducting qubits and trapped ions compete as quantum hardware.",
    ]
    scores = BM25(docs).scores("superconducting qubits")
    assert scores[1] == 0
    assert scores[2] > 0 and scores[0] > 0


def test_lexrank_and_mmr_drop_duplicates() -> None:
    docs = [
        "Solar panels convert sunlight into electricity.",
        "Solar panels convert sunlight into electricity efficiently.",
        "Wind turbines convert wind into electricity.",
        "My cat sleeps all day.",
    ]
    vectors = Vectors(docs)
    central = lexrank(vectors)
    assert abs(sum(central) - 1) < 1e-6
    assert central[3] == min(central)
    chosen = mmr([1.0, 0.99, 0.8, 0.1], vectors.sim, 2, diversity=0.5)
    assert chosen[0] == 0 and 1 not in chosen


def test_language_detection() -> None:
    assert detect_language("The committee said that it was not ready for the vote.") == "en"
    assert (
        detect_language("Die Regierung hat gesagt, dass sie nicht bereit ist und das ist so.")
        == "de"
    )
    assert (
        detect_language("Le gouvernement a dit que les élections sont dans un mois et pour tous.")
        == "fr"
    )
    assert (
        detect_language("El gobierno dijo que las elecciones son en un mes y para todos.") == "es"
    )
    assert detect_language("Правительство заявило, что выборы пройдут через месяц.") == "ru"
    assert detect_language("政府は来月選挙を行うと発表した。") == "ja"
    assert detect_language("12345 !!!") is None


_PROSE = (
    "Solar panels turn light into electricity. Silicon panels dominate the market today. "
    "Prices of silicon solar panels fell every year for a decade. My neighbour has a dog. "
    "Perovskite cells could make solar panels cheaper still, if they last long enough."
)


@given(
    text=st.one_of(
        st.text(max_size=3000),
        st.lists(st.sampled_from(_PROSE.split(". ")), max_size=30).map(". ".join),
        st.lists(st.text(max_size=300), max_size=5),
    ),
    max_length=st.integers(min_value=1, max_value=1500),
    fmt=st.sampled_from(["paragraph", "bullets"]),
)
@settings(max_examples=300, deadline=None)
def test_summary_never_exceeds_max_length(text: str | list[str], max_length: int, fmt: str) -> None:
    out = summarize(text, max_length=max_length, format=fmt)  # type: ignore[arg-type]
    assert len(out) <= max_length


def test_summary_is_extractive_and_central() -> None:
    out = summarize(_PROSE, max_length=160)
    assert 0 < len(out) <= 160
    assert "dog" not in out
    for sentence in split_sentences(out):
        assert sentence in _PROSE


def test_bullets_and_query() -> None:
    out = summarize(_PROSE, max_length=400, format="bullets", query="perovskite")
    lines = out.splitlines()
    assert all(line.startswith("- ") for line in lines)
    assert any("Perovskite" in line for line in lines)


def test_rank_sentences_respects_budget_and_order() -> None:
    picked = rank_sentences([_PROSE], k=10, budget=120)
    assert sum(len(p.text) for p in picked) + len(picked) - 1 <= 120
    assert [p.position for p in picked] == sorted(p.position for p in picked)


def test_truncate_cuts_on_words() -> None:
    assert truncate("alpha beta gamma delta", 13) == "alpha beta…"
    assert truncate("short", 10) == "short"
    assert truncate("abc", 1) == "a"
    assert truncate("abc", 0) == ""


def test_summary_drops_near_duplicates() -> None:
    text = (
        "Quantum machine learning is widely expected to be the first useful application of "
        "quantum computers. Quantum chemistry simulation is widely expected to be the first "
        "useful application of quantum computers. Quantum sensing already beats classical "
        "precision limits in laboratory measurements of quantum systems."
    )
    out = summarize(text, max_length=1000)
    assert out.count("is widely expected to be the first useful application") == 1
