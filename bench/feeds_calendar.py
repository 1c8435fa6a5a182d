"""Calendar members against the as-of join: what computing hours_to_next / hours_since_last /
importance_next at every candle close costs, beside one `asof` join of a series of the same size.

    .venv/bin/python bench/feeds_calendar.py            # 5.26 M decision times (10 pairs x 1 year of 1m)
    .venv/bin/python bench/feeds_calendar.py --n 500000

Calendars: the shipped example (calendars/example_macro.yaml, each event with its own available_at
because of known_ahead), and a stress calendar of 2,000 events each known from its own moment. The
anchor (issue 11): the as-of join of five series onto 5.26 M candles under 0.3 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.feeds.calendar_join import CALENDAR_MEMBERS, calendar_values  # noqa: E402
from engine.feeds.join import asof  # noqa: E402
from engine.feeds.observations import NS_PER_SECOND, Observation, to_arrays  # noqa: E402
from engine.feeds.sources._calendar_files import parse_calendar  # noqa: E402
from engine.feeds.sources.calendar import calendar_observations  # noqa: E402

START = 1_672_531_200 * NS_PER_SECOND  # 2023-01-01
MINUTE = 60 * NS_PER_SECOND


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5_256_000)
    args = parser.parse_args()
    # 10 pairs x 1 year of 1m closes, pair after pair (each pair's closes sorted, the whole not).
    per_pair = args.n // 10
    times = np.concatenate([START + (np.arange(per_pair) + 1) * MINUTE for _ in range(10)])
    text = (ROOT / "calendars" / "example_macro.yaml").read_text()
    example = to_arrays(
        calendar_observations(parse_calendar(text, "example"), "macro", START + 400 * 86_400 * NS_PER_SECOND)
    )
    rng = np.random.default_rng(7)
    events = np.sort(rng.integers(START, START + 400 * 86_400 * NS_PER_SECOND, 2_000))
    known = events - rng.integers(1, 60 * 86_400, 2_000) * NS_PER_SECOND
    stress = to_arrays(
        Observation("s.events", int(e), int(a), 2.0, "calendar") for e, a in zip(events, known, strict=True)
    )
    minute_series = to_arrays(
        Observation("x.v", int(t), int(t), 1.0, "bench") for t in START + np.arange(0, per_pair, 60) * MINUTE
    )
    pairs = [times[k * per_pair : (k + 1) * per_pair] for k in range(10)]
    print(f"{len(times):,} decision times: 10 pairs x {per_pair:,} one-minute closes")
    print("per pair: sorted closes, as the rule namespace calls it; all at once: one unsorted array")
    print(f"{'what':<52}{'per pair':>10}{'all at once':>13}")

    def row(label: str, fn) -> None:
        split = best(lambda: [fn(p) for p in pairs])
        whole = best(lambda: fn(times))
        print(f"{label:<52}{split:>10.3f}{whole:>13.3f}")

    row(f"asof, one hourly series ({len(minute_series)} rows)", lambda t: asof(t, minute_series, None))
    for name, series in (("example calendar", example), ("stress calendar", stress)):
        for member in CALENDAR_MEMBERS:
            row(
                f"{name} ({len(series)} rows), {member}",
                lambda t, s=series, m=member: calendar_values(t, s, m),
            )
    print("anchor: five as-of joins onto 5.26 M candles under 0.3 s (issue 11)")


if __name__ == "__main__":
    main()
