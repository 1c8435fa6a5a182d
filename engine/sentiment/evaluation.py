"""The labelled crypto headlines and the accuracy of a scorer on them (beside plain VADER's)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.sentiment.scorer import CryptoScorer, Label, label_of, plain_vader

__all__ = ["LABELLED_HEADLINES", "Accuracy", "accuracy", "compare_with_vader", "load_labelled"]

LABELLED_HEADLINES = Path(__file__).with_name("data") / "labelled_headlines.csv"
_LABELS: tuple[Label, ...] = ("positive", "negative", "neutral")


def load_labelled(path: str | Path = LABELLED_HEADLINES) -> list[tuple[Label, str]]:
    """(label, headline) rows of a CSV with a ``label,headline`` header."""
    rows: list[tuple[Label, str]] = []
    with open(path, encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            label = row["label"]
            if label not in _LABELS:
                raise ValueError(
                    f"{path}:{line}:1: label must be positive, negative or neutral, got {label!r}"
                )
            rows.append((label, row["headline"]))  # type: ignore[arg-type]
    return rows


@dataclass(frozen=True, slots=True)
class Accuracy:
    total: int
    correct: int
    per_label: dict[str, tuple[int, int]]  # label -> (correct, total)
    # Mistakes that flip the sign (positive called negative or the reverse): the costly kind.
    flipped: int

    @property
    def ratio(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def line(self, name: str) -> str:
        parts = ", ".join(f"{k} {c}/{t}" for k, (c, t) in self.per_label.items())
        return (
            f"{name:<14} {self.ratio:6.1%}  ({self.correct}/{self.total}; {parts}; sign flips {self.flipped})"
        )


def accuracy(rows: Sequence[tuple[Label, str]], compound: Callable[[str], float]) -> Accuracy:
    """Three-class accuracy of ``compound`` (text -> [-1, 1]) with VADER's ±0.05 neutral band."""
    per: dict[str, list[int]] = {k: [0, 0] for k in _LABELS}
    correct = flipped = 0
    for truth, text in rows:
        guess = label_of(compound(text))
        per[truth][1] += 1
        if guess == truth:
            per[truth][0] += 1
            correct += 1
        elif {guess, truth} == {"positive", "negative"}:
            flipped += 1
    return Accuracy(len(rows), correct, {k: (v[0], v[1]) for k, v in per.items()}, flipped)


def compare_with_vader(
    rows: Sequence[tuple[Label, str]] | None = None, scorer: CryptoScorer | None = None
) -> tuple[Accuracy, Accuracy]:
    """(crypto scorer, plain VADER) accuracy on ``rows`` (default: the shipped labelled set)."""
    rows = load_labelled() if rows is None else rows
    scorer = scorer or CryptoScorer()
    vader = plain_vader()
    return (
        accuracy(rows, scorer.compound),
        accuracy(rows, lambda text: float(vader.polarity_scores(text)["compound"])),
    )


if __name__ == "__main__":  # python -m engine.sentiment.evaluation [--mistakes]
    import sys

    ours, plain = compare_with_vader()
    print(ours.line("crypto lexicon"))
    print(plain.line("plain VADER"))
    if "--mistakes" in sys.argv:
        scorer = CryptoScorer()
        for truth, text in load_labelled():
            got = scorer.score(text)
            if got.label != truth:
                print(f"{truth:>8} -> {got.label:<8} {got.score:+.3f}  {text}  [{got.why()}]")
