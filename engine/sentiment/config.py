"""``sentiment.yaml`` (beside ``feeds.yaml`` in a project): news sources, scoring, the model and its
budget. Read with the project's line-aware YAML reader; errors carry file:line:col."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dsl import Diagnostic, DiagnosticError, Span
from dsl.timeframes import parse_duration
from engine.config._errors import validation_diagnostics
from engine.config._yaml import YamlDocument, read_yaml_file

__all__ = [
    "SENTIMENT_FILE",
    "ModelConfig",
    "SentimentConfig",
    "SourceConfig",
    "check_sentiment_document",
    "load_sentiment_config",
]

SENTIMENT_FILE = "sentiment.yaml"


def _duration(value: str) -> str:
    parse_duration(value)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """One news source. ``key``: ``env:NAME`` or ``store:NAME`` (CryptoPanic needs one)."""

    kind: Literal["cryptocompare", "cryptopanic", "rss"]
    name: str | None = None
    url: str | None = None
    key: str | None = None
    base_url: str | None = None
    filter: Literal["rising", "hot", "bullish", "bearish", "important", "saved", "lol"] | None = None
    currencies: str | None = None
    categories: str | None = None
    pages: int = Field(default=1, ge=1, le=100)  # cryptocompare/cryptopanic: older pages to walk back
    calls_per_minute: float = Field(default=10.0, gt=0)
    timeout_s: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _needs(self) -> SourceConfig:
        if self.kind == "rss" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("an rss source needs url: http(s)://...")
        if self.kind == "cryptopanic" and not self.key:
            raise ValueError("a cryptopanic source needs key: env:NAME or store:NAME")
        if self.key is not None and not self.key.startswith(("env:", "store:")):
            raise ValueError("key must be an env:NAME or store:NAME reference, never the key itself")
        return self

    @property
    def label(self) -> str:
        return self.name or (self.kind if self.kind != "rss" else (self.url or "rss"))


class ModelConfig(_Strict):
    """The OpenAI-compatible model called for ambiguous or critical items, and its daily budget."""

    enabled: bool = False
    model: str = "gpt-4o-mini"
    base_url: str | None = None  # any OpenAI-compatible server; None: api.openai.com
    key: str = "env:OPENAI_API_KEY"
    timeout_s: float = Field(default=20.0, gt=0)
    max_output_tokens: int = Field(default=200, ge=50, le=2000)
    # Budget per UTC day, kept in the store (shared by every process using it).
    max_calls_per_day: int = Field(default=200, ge=0)
    max_tokens_per_day: int = Field(default=200_000, ge=0)
    max_cost_usd_per_day: float = Field(default=1.0, ge=0)
    # Prices for the cost estimate, USD per million tokens (gpt-4o-mini's list prices by default).
    input_usd_per_1m: float = Field(default=0.15, ge=0)
    output_usd_per_1m: float = Field(default=0.60, ge=0)
    # When to call: |local score| below this is "ambiguous" ...
    ambiguous_below: float = Field(default=0.05, ge=0, le=1)
    # ... or the title and summary disagree in sign by more than this ...
    disagreement: float = Field(default=0.5, ge=0, le=2)
    # ... or the item is critical: an event keyword of these types, flagged important, or from these sources.
    critical_events: tuple[str, ...] = ("hack", "delisting", "regulation")
    critical_sources: tuple[str, ...] = ()
    # A critical item whose |local score| is at least this is clear enough: the model is not asked.
    decisive: float = Field(default=0.4, ge=0, le=1)
    # How far the model may move an item away from its local score (the injection guard), and the
    # confidence below which its answer is not used.
    max_shift: float = Field(default=1.0, gt=0, le=2)
    min_confidence: float = Field(default=0.5, ge=0, le=1)

    @field_validator("key")
    @classmethod
    def _reference(cls, value: str) -> str:
        if not value.startswith(("env:", "store:")):
            raise ValueError("key must be an env:NAME or store:NAME reference, never the key itself")
        return value


class SentimentConfig(_Strict):
    sources: tuple[SourceConfig, ...] = ()
    default_feeds: bool = True  # add engine.sentiment.sources.DEFAULT_RSS_FEEDS
    refresh: str = "5m"  # engine run: fetch every source this often while a bot reads news
    ingest_lag: str = "5m"  # published_at + this = when a bot could have known a backfilled item
    live_window: str = "6h"  # fetched within this of publication: available from max(lag, fetch time)
    half_life: str = "6h"  # of sentiment.<coin>.score
    max_age: str = "3d"  # score is NaN when the newest item is older
    lexicon: str | None = None  # another lexicon file (relative to the project)
    source_weights: dict[str, float] = Field(default_factory=dict)
    vote_weight: float = Field(default=0.3, ge=0, le=1)
    model: ModelConfig = ModelConfig()

    _check = field_validator("refresh", "ingest_lag", "live_window", "half_life", "max_age")(_duration)

    def seconds(self, name: Literal["refresh", "ingest_lag", "live_window", "half_life", "max_age"]) -> int:
        return parse_duration(getattr(self, name))


def check_sentiment_document(document: YamlDocument) -> tuple[SentimentConfig | None, list[Diagnostic]]:
    """The configuration of a parsed ``sentiment.yaml`` and its problems (``engine validate`` uses it)."""
    if document.root is None:
        return None, list(document.diagnostics)
    try:
        return SentimentConfig.model_validate(document.root.to_python() or {}), list(document.diagnostics)
    except ValidationError as exc:
        found = validation_diagnostics(exc, document.root, document.path, SentimentConfig)
        return None, [*document.diagnostics, *found] or [
            Diagnostic("CFG002", str(exc), Span.point(document.path, 1, 1))
        ]


def load_sentiment_config(root: Path | None) -> SentimentConfig:
    """``root/sentiment.yaml``, or the defaults when there is none. Raises DiagnosticError."""
    path = None if root is None else Path(root) / SENTIMENT_FILE
    if path is None or not path.is_file():
        return SentimentConfig()
    config, diagnostics = check_sentiment_document(read_yaml_file(path))
    if config is None:
        raise DiagnosticError(diagnostics)
    return config
