"""The local scorer: crypto lexicon, phrase rules, weighting, and its accuracy beside plain VADER's."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl import DiagnosticError
from engine.sentiment.evaluation import LABELLED_HEADLINES, compare_with_vader, load_labelled
from engine.sentiment.lexicon import compile_match, load_lexicon
from engine.sentiment.scorer import CryptoScorer, Votes, Weighting, label_of, plain_vader

HOLDOUT = LABELLED_HEADLINES.with_name("labelled_headlines_holdout.csv")


@pytest.fixture(scope="module")
def scorer() -> CryptoScorer:
    return CryptoScorer()


def test_crypto_words_that_plain_vader_misses(scorer: CryptoScorer) -> None:
    text = "BTC looks bullish, going to the moon"
    assert plain_vader().polarity_scores(text)["compound"] == 0.0
    result = scorer.score(text)
    assert result.label == "positive"
    assert "bullish +2.3" in result.terms and "to the moon +2.5" in result.terms


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("SEC approves spot Bitcoin ETF", "positive"),
        ("SEC rejects spot Bitcoin ETF", "negative"),
        ("Bitcoin ETF rejected again by SEC", "negative"),
        ("SEC does not approve the ETF", "negative"),  # VADER's negation applies to the phrase token
        ("SEC drops lawsuit against Ripple", "positive"),  # "drops" alone is negative
        ("Curve pools drained in $60M exploit", "negative"),
        ("Memecoin rug pull leaves holders with nothing", "negative"),
        ("Binance to list PEPE", "positive"),
        ("Binance delists three tokens", "negative"),
        ("Ethereum tests support at $3,000", "neutral"),  # support is a price level here
        ("Cardano schedules hard fork for January", "neutral"),
        ("Bitcoin hits all-time high above $100K", "positive"),
    ],
)
def test_phrases_and_overrides(scorer: CryptoScorer, text: str, label: str) -> None:
    assert scorer.score(text).label == label, scorer.score(text)


def test_phrase_words_are_not_counted_twice(scorer: CryptoScorer) -> None:
    # "rejected" alone is in VADER's lexicon; inside the phrase only the phrase's weight counts.
    words = scorer.rewrite("Bitcoin ETF rejected again").split()
    assert words[0] == "Bitcoin" and words[1].startswith("cxphrase") and words[2] == "again"
    assert scorer.score("Bitcoin ETF rejected again").terms == ("ETF rejection -2.8",)


def test_accuracy_beats_plain_vader_on_the_labelled_set() -> None:
    rows = load_labelled()
    assert len(rows) >= 250
    ours, plain = compare_with_vader(rows)
    assert ours.ratio >= 0.85
    assert ours.ratio - plain.ratio >= 0.25
    assert ours.flipped < plain.flipped


def test_accuracy_on_the_holdout_written_after_the_lexicon_was_frozen() -> None:
    ours, plain = compare_with_vader(load_labelled(HOLDOUT))
    assert ours.ratio >= 0.85 > plain.ratio


def test_source_and_vote_weighting_stay_bounded() -> None:
    weighting = Weighting(sources={"aggregator.example": 0.5})
    assert weighting.apply(0.8, source="aggregator.example") == pytest.approx(0.4)
    assert weighting.apply(0.8, source="coindesk.com") == pytest.approx(0.8)
    few = weighting.apply(0.0, votes=Votes(positive=3))
    many = weighting.apply(0.0, votes=Votes(positive=3000))
    assert 0 < few < many <= 0.3
    assert weighting.apply(0.95, votes=Votes(positive=10_000)) == 1.0
    assert weighting.apply(-0.95, votes=Votes(negative=10_000)) == -1.0


def test_summary_moves_a_neutral_headline(scorer: CryptoScorer) -> None:
    alone = scorer.score("Update on Project X")
    with_body = scorer.score("Update on Project X", summary="The bridge was hacked and funds were drained.")
    assert alone.label == "neutral" and with_body.label == "negative"
    assert "hacked -2.8" in with_body.terms


def test_label_band() -> None:
    assert [label_of(v) for v in (0.05, 0.049, -0.049, -0.05)] == [
        "positive",
        "neutral",
        "neutral",
        "negative",
    ]


@pytest.mark.parametrize(
    ("match", "hits", "misses"),
    [
        (
            "etf|etfs ... approv*",
            ["ETF finally approved", "etfs approval"],
            ["cetf approved", "approved ETF"],
        ),
        (
            "etf record? inflow|inflows",
            ["ETF record inflows", "etf inflow"],
            ["etf inflowing", "etf big inflows"],
        ),
        ("pump and|& dump", ["pump & dump", "Pump and Dump"], ["pump or dump"]),
    ],
)
def test_phrase_syntax(match: str, hits: list[str], misses: list[str]) -> None:
    import re

    pattern = re.compile(compile_match(match), re.IGNORECASE)
    assert all(pattern.search(t) for t in hits)
    assert not any(pattern.search(t) for t in misses)


@pytest.mark.parametrize("bad", ["... etf", "etf ...", "etf? approved", "etf ... ... approved", "bad$word"])
def test_phrase_syntax_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        compile_match(bad)


def test_bad_lexicon_file_reports_file_line_col(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text(
        "words:\n  bullish: 2.0\n  Moon: 1.0\n  rekt: nine\n  rug: -7\n"
        "phrases:\n  - {match: '... x', weight: 1, why: w}\n  - {match: a, weight: 1}\nextra: 1\n"
    )
    with pytest.raises(DiagnosticError) as info:
        load_lexicon(path)
    lines = [d.headline() for d in info.value.diagnostics]
    assert any(":3:3: error[SEN003]" in line for line in lines)
    assert any(":4:9: error[SEN002]" in line and "'nine'" in line for line in lines)
    assert any(":5:8: error[SEN002]" in line and "[-4, 4]" in line for line in lines)
    assert any(":7:13: error[SEN004]" in line for line in lines)
    assert any(":8:5: error[SEN004]" in line for line in lines)
    assert any(":9:1: error[SEN001]" in line for line in lines)


def test_custom_lexicon_is_used(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text(
        "words:\n  wagmi: 2.5\nphrases:\n  - {match: 'ngmi', weight: -2.5, why: not gonna make it}\n"
    )
    custom = CryptoScorer(load_lexicon(path))
    assert custom.score("wagmi frens").label == "positive"
    assert custom.score("this coin is ngmi").terms == ("not gonna make it -2.5",)
    assert custom.score("bullish").label == "neutral"  # the default lexicon is replaced, not merged
