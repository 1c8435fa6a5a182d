"""The HTML report of a walk-forward run (``engine ml train|walkforward --report FILE``): metrics beside
the baseline, metrics per window, feature importance, calibration, and predictions over price.
One self-contained file (inline SVG, the backtest report's look), nothing fetched online."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from engine.backtest._svg import candle_chart
from engine.backtest.report import _CSS  # one look for every report
from engine.ml.labels import BUY, CLASSES, UNKNOWN
from engine.ml.metrics import Metrics
from engine.ml.pipeline import Evaluation
from engine.ml.walkforward import WalkForward

__all__ = ["calibration", "render_ml_report", "write_ml_report"]


def _n(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td class='num'>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def calibration(
    y: np.ndarray, p_buy: np.ndarray, bins: int = 10
) -> list[tuple[float, float, float, float, int]]:
    """Per probability bin that has rows: (low, high, mean predicted P(buy), realised BUY share, rows)."""
    which = np.clip((p_buy * bins).astype(np.int64), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            out.append(
                (
                    b / bins,
                    (b + 1) / bins,
                    float(p_buy[mask].mean()),
                    float((y[mask] == BUY).mean()),
                    int(mask.sum()),
                )
            )
    return out


def _metrics(evaluation: Evaluation) -> str:
    m, b, p = evaluation.model, evaluation.baseline, evaluation.policy
    rows = [
        [name, _n(getattr(m, key)), _n(getattr(b, key))]
        for name, key in (
            ("accuracy", "accuracy"),
            ("balanced accuracy", "balanced_accuracy"),
            ("log loss", "log_loss"),
            ("ROC AUC (buy vs rest)", "roc_auc"),
        )
    ]
    classes = [[c, _n(v.precision), _n(v.recall), _n(v.f1), f"{v.support:,}"] for c, v in m.per_class.items()]
    policy = (
        f"<p>Policy (long while the model says buy, {p.fee:.2%} fee per side): "
        f"{p.total_return:+.2%} per pair on average over {p.trades:,} trades; buy and hold {p.buy_and_hold:+.2%}.</p>"
    )
    return (
        f"<section><h2>Out of sample</h2><p class='desc'>{m.rows:,} labelled predictions.</p>"
        + _table(["", "model", "baseline"], rows)
        + "<h3>Per class (model)</h3>"
        + _table(["class", "precision", "recall", "F1", "support"], classes)
        + "<h3>Confusion matrix (rows: what happened)</h3>"
        + _confusion(m)
        + policy
        + "</section>"
    )


def _confusion(m: Metrics) -> str:
    return _table(
        ["", *CLASSES], [[CLASSES[i], *(f"{v:,}" for v in row)] for i, row in enumerate(m.confusion)]
    )


def _windows(wf: WalkForward, evaluation: Evaluation) -> str:
    scores = {w: (s, n) for w, s, n in evaluation.per_window}
    train = {}
    for r in wf.results:
        train[r.window + 1] = train.get(r.window + 1, 0) + r.train_rows
    rows = []
    for w in wf.windows:
        score, count = scores.get(w.index + 1, (float("nan"), 0))
        start = pd.Timestamp(w.test_start, tz="UTC").strftime("%Y-%m-%d %H:%M")
        rows.append([str(w.index + 1), start, f"{train.get(w.index + 1, 0):,}", f"{count:,}", _n(score)])
    return (
        "<section><h2>Per window</h2>"
        + _table(
            ["window", "test from (UTC)", "training rows", "labelled predictions", "balanced accuracy"], rows
        )
        + "</section>"
    )


def _importance(importance: dict[str, float]) -> str:
    top = max(importance.values(), default=0) or 1
    rows = [
        [
            escape(k),
            f"{v:.1%}",
            f"<div style='background:#2f5bd3;height:10px;width:{200 * v / top:.0f}px'></div>",
        ]
        for k, v in importance.items()
    ]
    return (
        "<section><h2>Feature importance (share of gain, newest model)</h2>"
        + _table(["feature", "share", ""], rows)
        + "</section>"
    )


def _calibration(wf: WalkForward) -> str:
    ys, ps = [], []
    for r in wf.results:
        offset = 0
        for i, a, b in r.spans:
            y = wf.pairs[i].y[a:b]
            known = y != UNKNOWN
            ys.append(y[known])
            ps.append(r.proba[offset : offset + (b - a), BUY][known])
            offset += b - a
    rows = [
        [f"{lo:.1f}–{hi:.1f}", _n(mean), _n(share), f"{n:,}"]
        for lo, hi, mean, share, n in calibration(np.concatenate(ys), np.concatenate(ps))
    ]
    return (
        "<section><h2>Calibration of P(buy)</h2><p class='desc'>A calibrated model's realised share matches "
        "its mean prediction in each bin.</p>"
        + _table(["P(buy) bin", "mean predicted", "realised BUY share", "rows"], rows)
        + "</section>"
    )


def _charts(wf: WalkForward, max_pairs: int = 10) -> str:
    parts = []
    start = wf.windows[0].test_start
    for data in wf.pairs[:max_pairs]:
        if data.candles is None:
            continue
        keep = data.times >= start
        candles = data.candles[keep]
        p = np.full((int(keep.sum()), 3), np.nan)
        first = int(np.flatnonzero(keep)[0]) if keep.any() else 0
        for r in wf.results:
            offset = 0
            for i, a, b in r.spans:
                if wf.pairs[i] is data:
                    p[a - first : b - first] = r.proba[offset : offset + (b - a)]
                offset += b - a
        panels = [
            (f"P({c})", p[:, j]) for j, c in enumerate(CLASSES) if np.nanmax(np.nan_to_num(p[:, j])) > 0
        ]
        parts.append(
            f"<h3>{escape(data.pair)}</h3><div class='scroll'>{candle_chart(candles, [], panels, [])}</div>"
        )
    return "<section><h2>Predictions over price</h2>" + "".join(parts) + "</section>" if parts else ""


def render_ml_report(
    title: str,
    meta: dict[str, str],
    wf: WalkForward,
    evaluation: Evaluation,
    importance: dict[str, float] | None,
) -> str:
    header = (
        f"<h1>{escape(title)}</h1><dl class='meta'>"
        + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in meta.items())
        + "</dl>"
    )
    body = "".join(
        [
            header,
            _metrics(evaluation),
            _windows(wf, evaluation),
            _importance(importance) if importance else "",
            _calibration(wf),
            _charts(wf),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def write_ml_report(path: Path, *args: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_ml_report(*args), encoding="utf-8")  # type: ignore[arg-type]
    return path
