"""Sentiment benchmark: the crypto scorer beside plain VADER, in one run, on one core.

    .venv/bin/python bench/sentiment.py                 # every section
    .venv/bin/python bench/sentiment.py --rounds 20     # more repetitions of the headline set

Printed:
- ``scorer``: headlines per second of plain VADER's ``polarity_scores`` and of the crypto scorer
  (``CryptoScorer.compound``: phrase rewrite + VADER on the extended lexicon; and ``score``, which also
  collects the terms that fired, the "why" stored with each item). Target: >= 5,000/s on one core.
- ``accuracy``: three-class accuracy on the labelled headlines and on the hold-out set written after
  the lexicon was frozen, crypto scorer beside plain VADER.
Everything is local; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _pin_one_core() -> None:
    # "On one core": the figure must not depend on how many cores the machine lends the process.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def _rates(fns: list, texts: list[str], rounds: int, trials: int = 5) -> list[float]:
    """Best headlines/s of each function; trials interleave the functions so that a neighbour's load
    on the shared machine hits them alike."""
    for fn in fns:
        for text in texts[:50]:  # warm caches (regex, dict lookups)
            fn(text)
    best = [0.0] * len(fns)
    for _ in range(trials):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(rounds):
                for text in texts:
                    fn(text)
            best[i] = max(best[i], rounds * len(texts) / (time.perf_counter() - start))
    return best


def bench_scorer(rounds: int) -> None:
    from engine.sentiment.evaluation import load_labelled
    from engine.sentiment.scorer import CryptoScorer, plain_vader

    texts = [text for _, text in load_labelled()]
    vader = plain_vader()
    scorer = CryptoScorer()
    plain, compound, full = _rates([vader.polarity_scores, scorer.compound, scorer.score], texts, rounds)
    print(f"scorer ({len(texts)} headlines x {rounds} rounds, best of 5 interleaved trials, one core)")
    print(f"  plain VADER polarity_scores     {plain:>10,.0f} headlines/s")
    print(
        f"  crypto scorer compound          {compound:>10,.0f} headlines/s  ({compound / plain:.2f}x VADER)"
    )
    print(f"  crypto scorer score (+ why)     {full:>10,.0f} headlines/s  ({full / plain:.2f}x VADER)")
    print("  target                               5,000 headlines/s")


def bench_accuracy() -> None:
    from engine.sentiment.evaluation import LABELLED_HEADLINES, compare_with_vader, load_labelled

    for name, path in (
        ("labelled set", LABELLED_HEADLINES),
        ("hold-out set", LABELLED_HEADLINES.with_name("labelled_headlines_holdout.csv")),
    ):
        ours, plain = compare_with_vader(load_labelled(path))
        print(f"accuracy, {name} ({ours.total} headlines, 3 classes, neutral band ±0.05)")
        print("  " + ours.line("crypto lexicon"))
        print("  " + plain.line("plain VADER"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10, help="repetitions of the headline set per timing")
    args = parser.parse_args()
    _pin_one_core()
    bench_scorer(args.rounds)
    bench_accuracy()


if __name__ == "__main__":
    main()
