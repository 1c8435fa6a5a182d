"""Ingestion: fetch every source, tag coins, score locally, store once, ask the model where it pays,
detect events, and write the point-in-time observations the rules read.

A source that fails (HTTP errors, HTTP-200 errors, refused XML, schema drift) is reported and skipped;
the others go on. The model never blocks ingestion: items are stored with their local score first, and
a model answer (or the reason there is none) is written afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.config._secrets import resolve_secret
from engine.feeds.http import FeedError, FeedHttpClient
from engine.feeds.observations import Observation
from engine.feeds.store import write_observations
from engine.sentiment.coins import tag_coins
from engine.sentiment.config import SentimentConfig, SourceConfig
from engine.sentiment.events import detect_events
from engine.sentiment.items import NewsItem
from engine.sentiment.lexicon import load_lexicon
from engine.sentiment.model import ModelScorer
from engine.sentiment.newsstore import (
    ScoredItem,
    StoryIndex,
    content_hash,
    cover_batch,
    plan_items,
    set_model_result,
    write_new_observations,
    write_plan,
)
from engine.sentiment.scorer import CryptoScorer, Weighting
from engine.sentiment.series import item_observations, model_observations
from engine.sentiment.sources import (
    CRYPTOCOMPARE_URL,
    CRYPTOPANIC_URL,
    DEFAULT_RSS_FEEDS,
    CryptoCompareNews,
    CryptoPanicNews,
    NewsSource,
    RssNews,
)
from engine.sentiment.triage import model_reason
from engine.store.models import NewsItem as NewsRow

__all__ = ["IngestReport", "NewsPipeline", "available_at"]

OBSERVATION_CHUNK = 64


def available_at(published: int, fetched: int, *, lag_ns: int, live_window_ns: int) -> int:
    """When a running bot could have known an item (docs/sentiment.md, "Point in time"): a backfilled
    item (fetched long after publication) from ``published + lag``; an item fetched live from the later of
    that and the fetch itself, since a live bot could not have acted on it earlier."""
    if fetched - published > live_window_ns:
        return published + lag_ns
    return max(published + lag_ns, fetched)


@dataclass(slots=True)
class IngestReport:
    fetched: dict[str, int] = field(default_factory=dict)  # source -> items delivered
    errors: dict[str, str] = field(default_factory=dict)  # source -> why it failed this time
    skipped: dict[str, int] = field(default_factory=dict)  # source -> malformed items dropped
    added: int = 0
    same_url: int = 0
    same_story: int = 0
    model: dict[str, int] = field(default_factory=dict)  # model status -> items
    observations: int = 0


class NewsPipeline:
    def __init__(
        self,
        config: SentimentConfig,
        sessions: async_sessionmaker[AsyncSession],
        *,
        root: Path | None = None,
        store_secrets: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], int] = time.time_ns,
        retries: int = 3,
        backoff: float = 1.0,
        model_http_client: object = None,
        write_lock: asyncio.Lock | None = None,
        on_observations: Callable[[list[Observation]], None] | None = None,
    ):
        """``write_lock``: the runtime's SQLite write lock, held around every write transaction so news
        never holds the database while a candle's orders wait. ``on_observations``: called with what each
        write stored (the runtime extends its shared series reader with it)."""
        self.config = config
        self.sessions = sessions
        self.write_lock = write_lock
        self.on_observations = on_observations
        self.root = root
        self.store_secrets = dict(store_secrets or {})
        self.environ = environ if environ is not None else os.environ
        self.transport = transport
        self.clock = clock
        self.retries = retries
        self.backoff = backoff
        lexicon = load_lexicon(root / config.lexicon) if root and config.lexicon else None
        self.scorer = CryptoScorer(lexicon, Weighting(config.source_weights, vote_weight=config.vote_weight))
        self._clients: list[FeedHttpClient] = []
        self.index = StoryIndex()
        self.sources = [self._build(source) for source in self._source_configs()]
        self.model: ModelScorer | None = None
        if config.model.enabled:
            key = self._secret(config.model.key, "the model API key")
            self.model = ModelScorer(
                config.model, sessions, api_key=key, clock=clock, http_client=model_http_client
            )

    def _source_configs(self) -> list[SourceConfig]:
        sources = list(self.config.sources)
        if self.config.default_feeds:
            known = {s.url for s in sources}
            sources += [
                SourceConfig(kind="rss", name=name, url=url)
                for name, url in DEFAULT_RSS_FEEDS.items()
                if url not in known
            ]
        return sources

    def _secret(self, reference: str, what: str) -> str:
        return resolve_secret(reference, environ=self.environ, store=self.store_secrets, what=what)

    def _client(
        self, service: str, base_url: str, source: SourceConfig, secrets: tuple[str, ...]
    ) -> FeedHttpClient:
        client = FeedHttpClient(
            service,
            base_url,
            per_minute=source.calls_per_minute,
            timeout=source.timeout_s,
            retries=self.retries,
            backoff=self.backoff,
            secrets=secrets,
            transport=self.transport,
            max_bytes=5 * 1024 * 1024,
        )
        self._clients.append(client)
        return client

    def _build(self, source: SourceConfig) -> NewsSource:
        key = self._secret(source.key, f"the {source.kind} key") if source.key else None
        secrets = (key,) if key else ()
        if source.kind == "cryptocompare":
            http = self._client("cryptocompare", source.base_url or CRYPTOCOMPARE_URL, source, secrets)
            return CryptoCompareNews(http, key, source.categories, name=source.label, pages=source.pages)
        if source.kind == "cryptopanic":
            http = self._client("cryptopanic", source.base_url or CRYPTOPANIC_URL, source, secrets)
            assert key is not None  # the config requires one
            return CryptoPanicNews(
                http, key, source.filter, source.currencies, name=source.label, pages=source.pages
            )
        url = source.url or ""
        http = self._client(f"rss:{source.label}", url, source, secrets)
        return RssNews(http, url, source.name or httpx.URL(url).host)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        if self.model is not None:
            await self.model.aclose()

    def score_item(self, item: NewsItem, fetched: int) -> ScoredItem:
        local = self.scorer.score(item.title, summary=item.summary, source=item.source, votes=item.votes)
        coins = tag_coins(item.title, item.summary, lang=item.lang, given=item.coins)
        when = available_at(
            item.published_at,
            fetched,
            lag_ns=self.config.seconds("ingest_lag") * 1_000_000_000,
            live_window_ns=self.config.seconds("live_window") * 1_000_000_000,
        )
        return ScoredItem(item, coins, local, fetched, when, detect_events(item.title, item.summary))

    async def ingest(self, since_ns: int | None = None) -> IngestReport:
        """Fetch every source, then store what they brought in one go: one read of what is stored and
        at most one write transaction per round (not one per source), so a round with news from ten
        outlets takes the runtime's write lock once."""
        report = IngestReport()
        scored: list[ScoredItem] = []
        important: set[str] = set()
        for source in self.sources:
            now = int(self.clock())
            since = since_ns
            if since is None and getattr(source, "pages", 1) > 1:
                since = await self._newest(source.kind)  # walk back only to what is stored
            try:
                items = await source.fetch(since, now)
            except FeedError as exc:
                report.errors[source.name] = str(exc)
                continue
            report.fetched[source.name] = len(items)
            if source.skipped:
                report.skipped[source.name] = source.skipped
            if items:
                scored.extend(await asyncio.to_thread(self.score_items, items, now))
                important.update(item.url for item in items if item.important)
        await self._save(scored, important, report)
        return report

    async def _newest(self, kind: str) -> int | None:
        from sqlalchemy import func, select

        async with self.sessions() as session:
            return await session.scalar(
                select(func.max(NewsRow.published_at)).where(NewsRow.source_kind == kind)
            )

    def score_items(self, items: list[NewsItem], fetched: int) -> list[ScoredItem]:
        """For a worker thread: the work holds the GIL, and an event loop waiting for it would wait a
        whole switch interval (5 ms); handing it over after each item (~0.2 ms) keeps the loop's waits short."""
        out = []
        for item in items:
            out.append(self.score_item(item, fetched))
            time.sleep(0)
        return out

    async def store(
        self, items: list[NewsItem], fetched: int, report: IngestReport | None = None
    ) -> list[NewsRow]:
        """Score, store and (where it pays) send to the model the given items; returns the new rows.

        The discipline of the feed refreshes (engine/feeds/service.py), since this shares the bots' event
        loop and their SQLite writer: scoring and deduplication run in a worker thread; what is already
        stored is found with reads, outside any write transaction; the runtime's write lock is taken,
        and a transaction opened, only when the batch adds a story or gives a stored one a new outlet or
        coin. A refetch that brings nothing new (most of them) writes nothing; an empty batch reads
        nothing either."""
        report = report if report is not None else IngestReport()
        if not items:
            return []
        scored = await asyncio.to_thread(self.score_items, items, fetched)
        return await self._save(scored, {item.url for item in items if item.important}, report)

    async def _save(
        self, scored: list[ScoredItem], important: set[str], report: IngestReport
    ) -> list[NewsRow]:
        if not scored:
            return []
        try:
            async with self.sessions() as session:
                await cover_batch(session, scored, self.index)
            plan = await asyncio.to_thread(plan_items, scored, self.index)
            observations: list[Observation] = []
            if plan:
                async with self._writing(), self.sessions() as session, session.begin():
                    saved = await write_plan(session, plan, self.index)
                    # New rows only: their observations cannot be stored yet (no revision reads).
                    observations = [obs for row in saved.added for obs in item_observations(row)]
                    for start in range(0, len(observations), OBSERVATION_CHUNK):
                        chunk = observations[start : start + OBSERVATION_CHUNK]
                        report.observations += await write_new_observations(session, chunk)
                        await asyncio.sleep(0)
            else:
                saved = plan.result
        except BaseException:
            self.index = StoryIndex()  # it may hold rows of a plan that was not written
            raise
        self._published(observations)
        report.added += len(saved.added)
        report.same_url += saved.same_url
        report.same_story += saved.same_story
        added = saved.added
        for row in added:
            await self._ask_model(row, row.url in important, report)
        return added

    async def _ask_model(self, row: NewsRow, important: bool, report: IngestReport) -> None:
        if self.model is None:
            return
        reason = model_reason(
            self.scorer,
            row.title,
            row.summary,
            row.local_score,
            row.events,
            row.source,
            important,
            self.config.model,
        )
        if reason is None:
            return
        outcome = await self.model.score(
            title=row.title,
            summary=row.summary,
            source=row.source,
            coins=row.coins,
            local=row.local_score,
            content_hash=row.content_hash or content_hash(row.title, row.summary),
        )
        report.model[outcome.status] = report.model.get(outcome.status, 0) + 1
        events = list(row.events)
        if outcome.event_type and outcome.event_type not in events:
            events.append(outcome.event_type)
        observations: list[Observation] = []
        async with self._writing(), self.sessions() as session, session.begin():
            await set_model_result(
                session,
                row.id,
                status=outcome.status,
                why=f"sent because {reason}: {outcome.why}",
                score=outcome.score,
                confidence=outcome.confidence,
                at=outcome.answered_at,
                events=events,
            )
            if outcome.score is not None and outcome.answered_at is not None:
                new_events = [e for e in events if e not in row.events]
                observations = model_observations(row, outcome.score, outcome.answered_at, new_events)
                report.observations += await write_observations(session, observations)
        self._published(observations)

    def _writing(self) -> contextlib.AbstractAsyncContextManager[object]:
        return self.write_lock if self.write_lock is not None else contextlib.nullcontext()

    def _published(self, observations: list[Observation]) -> None:
        if self.on_observations is not None and observations:
            self.on_observations(observations)
