"""Token flows into and out of labelled exchange wallets, from Etherscan API V2 (key required).

``GET /v2/api?chainid=1&module=account&action=tokentx&contractaddress=TOKEN&address=WALLET&startblock=
&endblock=&page=&offset=&sort=asc&apikey=`` for each labelled wallet of the chain (``chain:``, 1
Ethereum by default, 56 BNB Chain: the same API, what BscScan was). Every answer is HTTP 200; errors
are ``status: "0"``: ``"No transactions found"`` is an empty result, ``"Max calls per sec rate limit
reached"`` is a rate limit (retried after a second), anything else (bad key, bad chain, window too
large) is a service error. At most 10,000 records are reachable per query (page x offset), so after
a full window the block window moves to the last block seen (that block is fetched again and its
transfers de-duplicated). The free tier allows 3 calls a second, which the source keeps to.

Amounts are token units: ``value / 10**tokenDecimal`` (USDT has 6 decimals, so "180000000" is 180
USDT). A transfer between two labelled wallets is an exchange's own move and counts in neither
direction. Per complete hour (quiet hours as zeros): ``inflow``, ``outflow``, ``netflow`` = inflow -
outflow, ``large_transfers`` = transfers of at least ``min_value`` token units (100,000 by default).
``event_time`` is the hour's start, ``available_at`` its end plus ``lag`` (2 minutes unless the feed
sets one: the hour's last blocks get indexed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from engine.feeds.http import BadResponse, FeedHttpClient, RateLimited, ServiceError
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.sources._flows import (
    HOUR_S,
    SHIPPED_LABELS,
    Flow,
    flow_observations,
    hourly_flows,
    load_labels,
)
from engine.feeds.sources.base import FetchRequest, SourceSetup
from engine.observability import category_logger, log_event

__all__ = ["BASE_URL", "CALLS_PER_MINUTE", "EtherscanSource", "build", "check_answer", "transfers_of"]

BASE_URL = "https://api.etherscan.io"
CALLS_PER_MINUTE = 180  # 3 a second on the free tier (spaced by the source), 100,000 a day
PER_SECOND = 3
DEFAULT_MIN_VALUE = 100_000.0
DEFAULT_LAG_S = 120.0
OFFSET = 1000
WINDOW = 10_000  # records reachable per query: page x offset
LAST_BLOCK = 99_999_999

api_log = category_logger("api_calls")


def check_answer(body: Any) -> list[Any] | str:
    """The ``result`` of an Etherscan answer (a list, or a string such as a block number); raises
    RateLimited, ServiceError or BadResponse for the error shapes."""
    if not isinstance(body, dict) or "status" not in body or "result" not in body:
        raise BadResponse("etherscan", "expected an object with status and result")
    status, message, result = str(body["status"]), str(body.get("message") or ""), body["result"]
    if status == "1":
        if not isinstance(result, list | str):
            raise BadResponse("etherscan", f"unexpected result of type {type(result).__name__}")
        return result
    if message.startswith("No transactions found") or (
        message.startswith("No records") and result in ([], None)
    ):
        return []
    detail = str(result)[:200]
    if "rate limit" in detail.lower() or "rate limit" in message.lower():
        raise RateLimited("etherscan", f"{message}: {detail}", 1.0)
    raise ServiceError("etherscan", f"{message or 'NOTOK'}: {detail}")


def transfers_of(
    rows: Iterable[Any], token: str, wallets: set[str], seen: set[tuple[str, ...]]
) -> tuple[list[Flow], int, int | None]:
    """(exchange flows, malformed rows skipped, highest block seen) of ``tokentx`` rows. ``seen``
    collects each transfer's key so that a transfer met twice (from both of its wallets, or again at
    a window's edge) counts once."""
    flows: list[Flow] = []
    skipped = 0
    last_block: int | None = None
    for row in rows:
        try:
            block = int(row["blockNumber"])
            stamp = int(row["timeStamp"])
            sender, receiver = str(row["from"]).lower(), str(row["to"]).lower()
            amount = int(str(row["value"])) / 10 ** int(str(row["tokenDecimal"]))
            contract = str(row.get("contractAddress") or token).lower()
            key = (
                str(row["hash"]).lower(),
                sender,
                receiver,
                str(row["value"]),
                str(row.get("logIndex", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            skipped += 1
            continue
        last_block = block if last_block is None else max(last_block, block)
        if contract != token.lower() or key in seen:
            continue
        seen.add(key)
        into, out_of = receiver in wallets, sender in wallets
        if into != out_of:  # between two labelled wallets: the exchange's own move
            flows.append(Flow(stamp, amount, inflow=into))
    return flows, skipped, last_block


class EtherscanSource:
    kind = "etherscan"

    def __init__(
        self,
        http: FeedHttpClient,
        key: str | None,
        root: Path,
        *,
        offset: int = OFFSET,
        window: int = WINDOW,
        per_second: float = PER_SECOND,
        pause_s: float = 1.0,
    ):
        self.http = http
        self.key = key
        self.root = root
        self.offset = offset
        self.window = window
        # A little over 1/3 s: calls exactly 1/3 s apart put a 4th call right on the 1 s edge.
        self.spacing = 1.05 / per_second
        self.pause_s = pause_s
        self._last_call = 0.0

    async def _get(self, params: Mapping[str, Any]) -> list[Any] | str:
        for attempt in range(3):
            wait = self._last_call + self.spacing - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_call = time.monotonic()
            body = await self.http.get_json("/v2/api", {**params, "apikey": self.key or ""})
            try:
                return check_answer(body)
            except RateLimited:
                if attempt == 2:
                    raise
                log_event(api_log, "etherscan rate limit, retrying", wait_s=self.pause_s)
                await asyncio.sleep(self.pause_s)
        raise AssertionError("unreachable")

    async def _block_at(self, chain: int, when_s: int) -> int:
        result = await self._get(
            {
                "chainid": chain,
                "module": "block",
                "action": "getblocknobytime",
                "timestamp": when_s,
                "closest": "after",
            }
        )
        try:
            return int(str(result))
        except ValueError:
            raise BadResponse("etherscan", f"block number expected, got {str(result)[:80]!r}") from None

    def _wallets(self, chain: int, labels: str | None) -> set[str]:
        paths = [SHIPPED_LABELS]
        if labels:
            path = Path(labels)
            paths.append(path if path.is_absolute() else self.root / path)
        try:
            known = load_labels(paths)
        except ValueError as exc:
            raise BadResponse("etherscan", str(exc)) from None
        wallets = {address for (on, address) in known if on == chain}
        if not wallets:
            raise ServiceError(
                "etherscan", f"no labelled exchange wallets on chain {chain} (add some with labels:)"
            )
        return wallets

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        model = request.feed.model
        token = str(model.token or "").lower()
        chain = int(model.chain or 1)
        lag_s = request.feed.lag_s if model.lag else DEFAULT_LAG_S
        wallets = self._wallets(chain, model.labels)
        now_s = request.now_ns // NS_PER_SECOND
        end_s = (now_s - int(lag_s)) // HOUR_S * HOUR_S  # hours whose end (plus lag) has passed
        if request.since_ns is not None:
            start_s = request.since_ns // NS_PER_SECOND + HOUR_S
        else:
            days = model.history_days or (30 if request.backfill else 2)
            start_s = end_s - days * 86_400
        start_s -= start_s % HOUR_S
        if start_s >= end_s:
            return []
        first_block = await self._block_at(chain, start_s)
        seen: set[tuple[str, ...]] = set()
        flows: list[Flow] = []
        for wallet in sorted(wallets):
            flows.extend(await self._wallet_flows(chain, token, wallet, wallets, first_block, end_s, seen))
        hours = hourly_flows(flows, start_s, end_s, float(model.min_value or DEFAULT_MIN_VALUE))
        return flow_observations(request.feed, hours, request.members, lag_s, self.kind)

    async def _wallet_flows(
        self, chain: int, token: str, wallet: str, wallets: set[str], first_block: int, end_s: int, seen: set
    ) -> list[Flow]:
        flows: list[Flow] = []
        start_block = first_block
        while True:
            last_block: int | None = None
            for page in range(1, self.window // self.offset + 1):
                rows = await self._get(
                    {
                        "chainid": chain,
                        "module": "account",
                        "action": "tokentx",
                        "contractaddress": token,
                        "address": wallet,
                        "startblock": start_block,
                        "endblock": LAST_BLOCK,
                        "page": page,
                        "offset": self.offset,
                        "sort": "asc",
                    }
                )
                if not isinstance(rows, list):
                    raise BadResponse("etherscan", "tokentx result is not a list")
                got, skipped, top = transfers_of(rows, token, wallets, seen)
                if skipped:
                    log_event(api_log, "malformed transfers skipped", service=self.kind, count=skipped)
                flows.extend(f for f in got if f.time_s < end_s)
                last_block = top if top is not None else last_block
                if len(rows) < self.offset or any(f.time_s >= end_s for f in got) or _past(rows, end_s):
                    return flows
            # Every page of the window was full.
            if last_block is None or last_block <= start_block:
                raise BadResponse(
                    "etherscan",
                    f"more than {self.window} transfers in block {start_block}: cannot page past it",
                )
            # The window is exhausted: start a new one at the last block seen (fetched again, de-duplicated).
            start_block = last_block

    async def aclose(self) -> None:
        """The HTTP client belongs to the FeedService."""


def _past(rows: list[Any], end_s: int) -> bool:
    """Whether the (ascending) rows reached the end of the range: no need to page further."""
    try:
        return int(rows[-1]["timeStamp"]) >= end_s
    except (KeyError, TypeError, ValueError, IndexError):
        return False


def build(setup: SourceSetup) -> EtherscanSource:
    http = setup.http or FeedHttpClient(
        "etherscan",
        setup.service.base_url or BASE_URL,
        per_minute=setup.service.calls_per_minute or CALLS_PER_MINUTE,
        secrets=(setup.key,) if setup.key else (),
    )
    return EtherscanSource(http, setup.key, Path(setup.root))
