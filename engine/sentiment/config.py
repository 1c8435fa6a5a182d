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


def _f(default: object, description: str, **bounds: float) -> object:
    return Field(default=default, description=description, **bounds)


class SourceConfig(_Strict):
    """One news source: CryptoCompare news, CryptoPanic v2 or an RSS/Atom feed by URL."""

    kind: Literal["cryptocompare", "cryptopanic", "rss"] = Field(description="which service or format")
    name: str | None = _f(None, "how the source is named in reports (default: the kind, or the feed's host)")
    url: str | None = _f(None, "the feed's URL (rss; required there)")
    key: str | None = _f(None, "`env:NAME` or `store:NAME` (cryptopanic: required; cryptocompare: optional)")
    base_url: str | None = _f(None, "another host speaking the same API (a mirror, a test server)")
    filter: Literal["rising", "hot", "bullish", "bearish", "important", "saved", "lol"] | None = _f(
        None, "CryptoPanic's filter parameter"
    )
    currencies: str | None = _f(None, "CryptoPanic's currencies parameter (BTC,ETH)")
    categories: str | None = _f(None, "CryptoCompare's categories parameter (BTC,ETH)")
    pages: int = _f(
        1, "older pages to walk back to backfill history (cryptocompare, cryptopanic)", ge=1, le=100
    )
    calls_per_minute: float = _f(10.0, "the source's rate limit (rolling minute)", gt=0)
    timeout_s: float = _f(20.0, "seconds per request", gt=0)

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
    """The OpenAI-compatible model called for ambiguous or critical items only, and its daily budget."""

    enabled: bool = _f(False, "call the model at all")
    model: str = _f("gpt-4o-mini", "model name sent to the server")
    base_url: str | None = _f(None, "any OpenAI-compatible server (default: api.openai.com)")
    key: str = _f("env:OPENAI_API_KEY", "the API key reference, `env:NAME` or `store:NAME`")
    timeout_s: float = _f(20.0, "seconds per call; a timeout keeps the local score", gt=0)
    max_output_tokens: int = _f(
        200, "the answer's cap (also what the budget reserves for it)", ge=50, le=2000
    )
    max_calls_per_day: int = _f(200, "calls per UTC day, counted in the store across processes", ge=0)
    max_tokens_per_day: int = _f(200_000, "tokens per UTC day (prompt + answer)", ge=0)
    max_cost_usd_per_day: float = _f(1.0, "estimated USD per UTC day", ge=0)
    input_usd_per_1m: float = _f(0.15, "price of a million prompt tokens, for the cost estimate", ge=0)
    output_usd_per_1m: float = _f(0.60, "price of a million answer tokens, for the cost estimate", ge=0)
    ambiguous_below: float = _f(
        0.05, "crypto terms cancelling out to below this make an item ambiguous", ge=0, le=1
    )
    disagreement: float = _f(
        0.5, "title and summary of opposite sign further apart than this are ambiguous", ge=0, le=2
    )
    critical_events: tuple[str, ...] = _f(
        ("hack", "delisting", "regulation"), "event types that make an item critical"
    )
    critical_sources: tuple[str, ...] = _f((), "outlets whose items are critical")
    decisive: float = _f(0.4, "a critical item whose |local score| is at least this is not sent", ge=0, le=1)
    max_shift: float = _f(1.0, "the model may move an item at most this far from its local score", gt=0, le=2)
    min_confidence: float = _f(0.5, "answers below this confidence are not used", ge=0, le=1)

    @field_validator("key")
    @classmethod
    def _reference(cls, value: str) -> str:
        if not value.startswith(("env:", "store:")):
            raise ValueError("key must be an env:NAME or store:NAME reference, never the key itself")
        return value


class SentimentConfig(_Strict):
    """``sentiment.yaml``: news sources, the local scorer's options, the point-in-time rules and the model."""

    sources: tuple[SourceConfig, ...] = _f((), "news sources")
    default_feeds: bool = _f(True, "add the default RSS list of well-known outlets to the sources")
    refresh: str = _f("5m", "engine run: fetch every source this often while a bot reads news")
    ingest_lag: str = _f("5m", "an item counts from `published_at` + this")
    live_window: str = _f(
        "6h", "an item fetched within this of publication counts from the later of that and its fetch"
    )
    half_life: str = _f("6h", "half-life of `sentiment.COIN.score`")
    max_age: str = _f("3d", "`sentiment.COIN.score` is NaN when the newest item about the coin is older")
    lexicon: str | None = _f(None, "another lexicon file, relative to the project")
    source_weights: dict[str, float] = Field(
        default_factory=dict, description="multiplier of an outlet's scores"
    )
    vote_weight: float = _f(0.3, "how far reader votes (CryptoPanic) can tilt a score", ge=0, le=1)
    model: ModelConfig = Field(
        default_factory=ModelConfig, description="the model, called only where it pays"
    )

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
