"""Which items go to the model: the ambiguous ones and the critical ones, nothing else.

- ambiguous: crypto terms fired but cancel out (|local score| below ``ambiguous_below``), or the title
  and the summary disagree in sign by more than ``disagreement``;
- critical: an event keyword of a type in ``critical_events``, an item readers flagged important, or a
  source listed in ``critical_sources``, unless the local score is already decisive (|score| at least
  ``decisive``: "Bybit hacked, $1.5B drained" needs no second opinion).
An item with no sentiment words and no event is neutral news; the model would say so at a price.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.sentiment.config import ModelConfig
from engine.sentiment.scorer import CryptoScorer

__all__ = ["model_reason"]


def model_reason(
    scorer: CryptoScorer,
    title: str,
    summary: str,
    local: float,
    events: Sequence[str],
    source: str,
    important: bool,
    config: ModelConfig,
) -> str | None:
    """Why the item should go to the model, or None."""
    if abs(local) < config.decisive:
        critical = [e for e in events if e in config.critical_events]
        if critical:
            return f"critical event ({', '.join(critical)})"
        if important:
            return "flagged important by readers"
        if source.lower() in {s.lower() for s in config.critical_sources}:
            return f"critical source ({source})"
    head = scorer.score(title)
    if head.terms and abs(local) < config.ambiguous_below:
        return "ambiguous (crypto terms cancel out)"
    if summary:
        body = scorer.compound(summary[:2000])
        if head.compound * body < 0 and abs(head.compound - body) > config.disagreement:
            return "title and summary disagree"
    return None
