"""Feature drift: the population stability index (PSI) of each feature between the rows a model was
trained on and recent candles. PSI = sum over bins of (recent% - train%) * ln(recent% / train%), with
bins at the training deciles; below 0.1 is stable, 0.1-0.25 a moderate shift, above 0.25 a major one
(the usual credit-scoring reading)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FeatureDrift", "feature_drift", "psi"]

MODERATE, MAJOR = 0.1, 0.25


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of ``actual`` against ``expected`` (missing values ignored; NaN when either side is empty)."""
    expected = expected[np.isfinite(expected)]
    actual = actual[np.isfinite(actual)]
    if len(expected) == 0 or len(actual) == 0:
        return float("nan")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    # Shares per bin; a small floor keeps an empty bin from making the index infinite.
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / len(actual)
    e, a = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float

    @property
    def level(self) -> str:
        if not np.isfinite(self.psi):
            return "unknown"
        return "major" if self.psi > MAJOR else "moderate" if self.psi > MODERATE else "stable"


def feature_drift(names: tuple[str, ...], train: np.ndarray, recent: np.ndarray) -> list[FeatureDrift]:
    """PSI per feature column, largest first."""
    found = [FeatureDrift(name, psi(train[:, j], recent[:, j])) for j, name in enumerate(names)]
    return sorted(found, key=lambda d: -d.psi if np.isfinite(d.psi) else 0.0)
