"""News sentiment and market events: a local crypto scorer, news ingestion, OpenAI only where it pays,
event detection and point-in-time series for the DSL. See docs/sentiment.md.

    from engine.sentiment import CryptoScorer
    CryptoScorer().score("SEC approves spot Bitcoin ETF")   # LocalScore(score=0.61, terms=('ETF approval +3.0',))
"""

from __future__ import annotations

from engine.sentiment.lexicon import DEFAULT_LEXICON, Lexicon, Phrase, load_lexicon
from engine.sentiment.scorer import CryptoScorer, LocalScore, Votes, Weighting, label_of, plain_vader

__all__ = [
    "DEFAULT_LEXICON",
    "CryptoScorer",
    "Lexicon",
    "LocalScore",
    "Phrase",
    "Votes",
    "Weighting",
    "label_of",
    "load_lexicon",
    "plain_vader",
]
