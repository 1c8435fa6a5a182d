"""The local scorer: VADER with the crypto lexicon and phrase rules, offline and fast.

Phrase rules are applied first: each match is replaced by a synthetic one-word token that carries the
phrase's weight in the lexicon, so VADER's own rules (negation, boosters, capitals, "but") still work
on it. The result keeps the crypto terms that fired, which is the "why" stored with every item.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from engine.sentiment.lexicon import DEFAULT_LEXICON, Lexicon, load_lexicon

__all__ = [
    "NEUTRAL_BAND",
    "CryptoScorer",
    "LocalScore",
    "Votes",
    "Weighting",
    "label_of",
    "plain_vader",
]

# VADER's documented thresholds on `compound`.
NEUTRAL_BAND = 0.05
Label = Literal["positive", "negative", "neutral"]


def label_of(score: float, band: float = NEUTRAL_BAND) -> Label:
    if score >= band:
        return "positive"
    if score <= -band:
        return "negative"
    return "neutral"


@cache
def _base_analyzer() -> SentimentIntensityAnalyzer:
    # Reading VADER's lexicon file takes ~20 ms; every scorer copies the dictionary of this one.
    return SentimentIntensityAnalyzer()


def plain_vader() -> SentimentIntensityAnalyzer:
    """Unmodified VADER, the baseline the crypto scorer is measured against."""
    return _base_analyzer()


@dataclass(frozen=True, slots=True)
class LocalScore:
    """``score`` in [-1, 1] (VADER's compound on the crypto lexicon, then any weighting); ``terms`` are
    the crypto words and phrases that fired, as ``"word +2.0"`` / ``"ETF approval +3.0"``."""

    score: float
    compound: float
    terms: tuple[str, ...] = ()

    @property
    def label(self) -> Label:
        return label_of(self.score)

    def why(self) -> str:
        return ", ".join(self.terms) if self.terms else "no crypto terms; general VADER lexicon"


@dataclass(frozen=True, slots=True)
class Votes:
    """Reader votes as CryptoPanic reports them (other sources have none)."""

    positive: int = 0
    negative: int = 0
    important: int = 0


@dataclass(frozen=True, slots=True)
class Weighting:
    """Optional source and vote weighting of a local score (documented in docs/sentiment.md).

    - ``sources``: multiplier per source name or domain (default 1.0), e.g. lower for aggregators that
      repost press releases. The product is clamped to [-1, 1].
    - votes tilt the score by ``vote_weight * (pos - neg) / (pos + neg + vote_prior)``: a handful of
      votes moves it a little, hundreds at most by ``vote_weight``.
    """

    sources: Mapping[str, float] = field(default_factory=dict)
    vote_weight: float = 0.3
    vote_prior: float = 5.0

    def apply(self, compound: float, *, source: str = "", votes: Votes | None = None) -> float:
        value = compound * self.sources.get(source.lower(), 1.0)
        if votes is not None and self.vote_weight:
            total = votes.positive + votes.negative
            value += self.vote_weight * (votes.positive - votes.negative) / (total + self.vote_prior)
        return max(-1.0, min(1.0, value))


class CryptoScorer:
    """VADER extended with a crypto lexicon. Thread-safe after construction (read-only state)."""

    def __init__(self, lexicon: Lexicon | None = None, weighting: Weighting | None = None) -> None:
        self.lexicon = lexicon if lexicon is not None else load_lexicon(DEFAULT_LEXICON)
        self.weighting = weighting or Weighting()
        analyzer = SentimentIntensityAnalyzer.__new__(SentimentIntensityAnalyzer)
        base = _base_analyzer()
        analyzer.lexicon = {**base.lexicon, **self.lexicon.words}
        analyzer.emojis = base.emojis
        for phrase in self.lexicon.phrases:
            analyzer.lexicon[phrase.token] = phrase.weight
        self._analyzer = analyzer
        self._regex = self.lexicon.regex()
        self._tokens = {f"p{i}": p.token for i, p in enumerate(self.lexicon.phrases)}
        self._why_of_token = {p.token: f"{p.why} {p.weight:+.1f}" for p in self.lexicon.phrases}
        self._crypto_words = self.lexicon.words

    def rewrite(self, text: str) -> str:
        """The text VADER sees: each phrase match replaced by its synthetic token."""
        if self._regex is None:
            return text
        tokens = self._tokens
        return self._regex.sub(lambda m: " " + tokens[m.lastgroup or ""] + " ", text)

    def compound(self, text: str) -> float:
        """VADER's compound score of ``text`` with the crypto lexicon, in [-1, 1]."""
        value = self._analyzer.polarity_scores(self.rewrite(text))["compound"]
        return 0.0 if math.isnan(value) else float(value)

    def score(
        self, text: str, *, summary: str = "", source: str = "", votes: Votes | None = None
    ) -> LocalScore:
        """Score a headline (and its summary, weighted 0.4 when it has sentiment of its own), with the
        crypto terms that fired and the configured source/vote weighting applied."""
        rewritten = self.rewrite(text)
        compound = float(self._analyzer.polarity_scores(rewritten)["compound"])
        terms = self._terms(rewritten)
        if summary:
            rewritten_summary = self.rewrite(summary[:2000])
            body = float(self._analyzer.polarity_scores(rewritten_summary)["compound"])
            if body:
                compound = 0.6 * compound + 0.4 * body if compound else 0.5 * body
                terms = tuple(dict.fromkeys((*terms, *self._terms(rewritten_summary))))
        weighted = self.weighting.apply(compound, source=source, votes=votes)
        return LocalScore(score=round(weighted, 4), compound=round(compound, 4), terms=terms)

    def _terms(self, rewritten: str) -> tuple[str, ...]:
        out: dict[str, None] = {}
        for raw in rewritten.split():
            word = raw.strip(".,:;!?\"'()[]{}").lower()
            why = self._why_of_token.get(word)
            if why is not None:
                out[why] = None
            elif self._crypto_words.get(word):
                out[f"{word} {self._crypto_words[word]:+.1f}"] = None
        return tuple(out)
