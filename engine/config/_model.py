"""The model document (``models/*.yaml``): features as DSL expressions, a label, a learner and the
walk-forward windows a machine-learning model is trained and evaluated on (docs/ml.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from engine.config._strategy import Input
from engine.config._types import (
    ConfigModel,
    Duration,
    Expression,
    Identifier,
    Int,
    Name,
    Number,
    Pair,
    Timeframe,
    ratio,
)

__all__ = [
    "DirectionLabel",
    "LightGBMLearner",
    "LogisticLearner",
    "Model",
    "Retrain",
    "TripleBarrierLabel",
    "Windows",
]

_Band = ratio(0.0, 1.0, low_inclusive=True, high_inclusive=False)


class DirectionLabel(ConfigModel):
    """The direction of the close-to-close return over ``horizon`` candles: BUY above the dead band,
    SELL below minus the band, HOLD in between (with a zero band there is no HOLD class)."""

    type: Literal["direction"] = Field(description="`direction`.")
    horizon: Int = Field(gt=0, description="Candles ahead whose close is compared with this close.")
    dead_band: _Band = Field(
        0.0, description="Returns within ±band are HOLD: 0.2% / 0.002. 0 gives two classes only."
    )


class TripleBarrierLabel(ConfigModel):
    """Whichever is touched first within ``horizon`` candles: the profit barrier (BUY), the stop
    barrier (SELL) or the time limit (HOLD). Barriers are multiples of the recent volatility
    (standard deviation of close-to-close returns over ``volatility`` candles)."""

    type: Literal["triple_barrier"] = Field(description="`triple_barrier`.")
    horizon: Int = Field(gt=0, description="Time limit in candles.")
    profit: Number = Field(gt=0, description="Upper barrier: this many volatilities above the close.")
    stop: Number = Field(gt=0, description="Lower barrier: this many volatilities below the close.")
    volatility: Int = Field(
        50, ge=2, description="Candles of returns whose standard deviation scales the barriers."
    )


def _kind(value: Any) -> Any:
    # Validation sees the YAML's dicts, serialisation the model instances.
    return value.get("type") if isinstance(value, dict) else getattr(value, "type", None)


def _label_kind(value: Any) -> str:
    kind = _kind(value)
    return str(kind) if kind in ("direction", "triple_barrier") else "invalid"


Label = Annotated[
    Annotated[DirectionLabel, Tag("direction")] | Annotated[TripleBarrierLabel, Tag("triple_barrier")],
    Discriminator(
        _label_kind,
        custom_error_type="CFG002",
        custom_error_message="a label's type must be 'direction' or 'triple_barrier'",
    ),
]


class LightGBMLearner(ConfigModel):
    """Gradient-boosted trees (LightGBM), multi-class on BUY/SELL/HOLD."""

    type: Literal["lightgbm"] = Field(description="`lightgbm`.")
    trees: Int = Field(200, gt=0, le=10_000, description="Boosting rounds (n_estimators).")
    learning_rate: Number = Field(0.05, gt=0, le=1, description="Shrinkage per tree.")
    leaves: Int = Field(31, ge=2, le=4096, description="Maximum leaves per tree (num_leaves).")
    min_child_samples: Int = Field(20, ge=1, description="Minimum rows in a leaf.")
    feature_fraction: Number = Field(1.0, gt=0, le=1, description="Share of features each tree sees.")
    bagging_fraction: Number = Field(1.0, gt=0, le=1, description="Share of rows each tree sees.")
    l2: Number = Field(0.0, ge=0, description="L2 regularisation (lambda_l2).")
    max_bin: Int = Field(
        63,
        ge=2,
        le=65_535,
        description="Histogram bins per feature (LightGBM's own default is 255; 63 trains ~2x faster on a few "
        "thousand rows, with the same out-of-sample accuracy in bench/ml_walkforward.py).",
    )


class LogisticLearner(ConfigModel):
    """Multinomial logistic regression on standardised features: the simple baseline."""

    type: Literal["logistic"] = Field(description="`logistic`.")
    c: Number = Field(1.0, gt=0, description="Inverse regularisation strength (scikit-learn's C).")
    max_iter: Int = Field(200, gt=0, description="Solver iterations.")


def _learner_kind(value: Any) -> str:
    kind = _kind(value)
    return str(kind) if kind in ("lightgbm", "logistic") else "invalid"


Learner = Annotated[
    Annotated[LightGBMLearner, Tag("lightgbm")] | Annotated[LogisticLearner, Tag("logistic")],
    Discriminator(
        _learner_kind,
        custom_error_type="CFG002",
        custom_error_message="a learner's type must be 'lightgbm' or 'logistic'",
    ),
]


class Windows(ConfigModel):
    """Walk-forward windows: train on ``train``, predict the next ``step``, move on by ``step``.

    Training rows whose label interval reaches into the predicted period are purged; ``embargo``
    drops that much more before it (serial correlation)."""

    train: Duration = Field(description="Length of each training window, e.g. 30d.")
    step: Duration = Field(description="Length of each predicted (out-of-sample) window, e.g. 1d.")
    purge: Int | None = Field(
        None, ge=0, description="Candles purged before each test window; default: the label horizon."
    )
    embargo: Int = Field(0, ge=0, description="Extra candles dropped between training and test.")
    min_train_rows: Int = Field(200, ge=10, description="Fewer labelled training rows is an error.")


class Retrain(ConfigModel):
    """Continuous learning: how often a running engine retrains and when a candidate replaces the model."""

    every: Duration = Field("1d", description="Time between retrainings.")
    timeout: Duration = Field(
        "30m",
        description="Longest a retraining (and the drift check after it) may run; past it the child is "
        "stopped and the production model kept (ml/retrain_failed event).",
    )
    promote: Literal["auto", "manual"] = Field(
        "manual", description="`auto`: promote a better candidate; `manual`: a person promotes."
    )
    margin: Number = Field(
        0.01, ge=0, description="Balanced-accuracy gain a candidate needs over production to be promoted."
    )
    live_window: Int = Field(
        500,
        ge=10,
        description="Live predictions (the newest labelled ones) the production model is scored on.",
    )
    min_live_accuracy: Number | None = Field(
        None,
        ge=0,
        le=1,
        description="Live balanced accuracy below which the production model counts as degraded (ml/degraded event).",
    )


class Model(ConfigModel):
    """A machine-learning model: features, label, learner and walk-forward windows."""

    model: Name = Field(description="Name of the model; rules read it as `ml.<name>.<member>`.")
    description: str | None = Field(None, description="What the model predicts, for people.")
    timeframe: Timeframe = Field(description="Candle timeframe of the rows, e.g. 5m.")
    exchange: str = Field("binance", description="Exchange whose stored candles train the model.")
    pairs: Annotated[list[Pair], Field(min_length=1)] = Field(
        description="Pairs whose candles are rows of the training set."
    )
    per_pair: bool = Field(
        False, description="true: one model per pair; false: one model trained on all pairs' rows."
    )
    inputs: dict[Identifier, Input] = Field(
        default_factory=dict,
        description="Named values the features use, as a strategy's inputs: `int`/`float` with a `range` "
        "(and `step`) are searched by `engine ml tune` beside the learner; the default is used otherwise.",
    )
    features: Annotated[dict[Identifier, Expression], Field(min_length=1)] = Field(
        description="Named DSL expressions computed causally at each candle close: what the learner sees."
    )
    label: Label = Field(description="What the model learns to predict (type: direction | triple_barrier).")
    learner: Learner = Field(
        default_factory=lambda: LightGBMLearner(type="lightgbm"),
        description="The learning algorithm (type: lightgbm | logistic).",
    )
    windows: Windows = Field(description="Walk-forward training and test windows.")
    seed: Int = Field(42, ge=0, description="Random seed of the learner (recorded with every version).")
    retrain: Retrain = Field(default_factory=Retrain, description="Retraining inside `engine run`.")
