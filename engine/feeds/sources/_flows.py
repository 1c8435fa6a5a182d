"""What the on-chain sources (etherscan, whale_alert) share: the exchange-wallet labels, and transfers
summed per hour into exchange inflow, outflow, net flow and a count of large transfers.

The labels ship in ``engine/feeds/data/exchange_wallets.csv`` (address, exchange, chain, label,
source: where the attribution comes from); a feed's ``labels:`` names a CSV of the same columns
(``label`` and ``source`` optional) that adds to them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.config._feeds import ResolvedFeed
from engine.feeds.namespace import series_for
from engine.feeds.observations import NS_PER_SECOND, Observation

__all__ = [
    "SHIPPED_LABELS",
    "Flow",
    "HourFlows",
    "WalletLabel",
    "flow_observations",
    "hourly_flows",
    "load_labels",
]

SHIPPED_LABELS = Path(__file__).resolve().parent.parent / "data" / "exchange_wallets.csv"
HOUR_S = 3600
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True, slots=True)
class WalletLabel:
    address: str  # lower case
    exchange: str
    chain: int
    label: str = ""
    source: str = ""


def load_labels(paths: Iterable[Path]) -> dict[tuple[int, str], WalletLabel]:
    """(chain, address) -> label from each CSV in turn (a later file overrides an earlier one).
    Raises ValueError naming ``file:line`` for a missing column or a malformed row."""
    out: dict[tuple[int, str], WalletLabel] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the wallet labels ({exc.strerror or exc})") from None
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        reader = csv.DictReader(lines)
        missing = {"address", "exchange", "chain"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}:1: the wallet labels need the column(s) {', '.join(sorted(missing))}")
        for row in reader:
            line = _line_of(text, row.get("address") or "")
            address = (row.get("address") or "").strip()
            if not _ADDRESS.match(address):
                raise ValueError(f"{path}:{line}: '{address}' is not an address (0x and 40 hex digits)")
            try:
                chain = int((row.get("chain") or "").strip())
            except ValueError:
                raise ValueError(
                    f"{path}:{line}: chain '{row.get('chain')}' is not a chain id (1, 56...)"
                ) from None
            exchange = (row.get("exchange") or "").strip()
            if not exchange:
                raise ValueError(f"{path}:{line}: no exchange named for {address}")
            label = WalletLabel(
                address.lower(),
                exchange,
                chain,
                (row.get("label") or "").strip(),
                (row.get("source") or "").strip(),
            )
            out[(chain, label.address)] = label
    return out


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle and needle in line:
            return number
    return 1


@dataclass(frozen=True, slots=True)
class Flow:
    """One transfer into (``inflow``) or out of (``outflow``) the exchanges' wallets."""

    time_s: int
    amount: float
    inflow: bool


@dataclass(slots=True)
class HourFlows:
    inflow: float = 0.0
    outflow: float = 0.0
    large: int = 0

    def values(self) -> dict[str, float]:
        return {
            "inflow": self.inflow,
            "outflow": self.outflow,
            "netflow": self.inflow - self.outflow,
            "large_transfers": float(self.large),
        }


def hourly_flows(flows: Iterable[Flow], start_s: int, end_s: int, min_value: float) -> dict[int, HourFlows]:
    """Totals of every hour in [start_s, end_s) (hour starts, UTC), quiet hours as zeros: the range
    was fetched whole, so no transfer is a fact. ``large_transfers`` counts flows >= min_value."""
    first = start_s - start_s % HOUR_S
    hours = {h: HourFlows() for h in range(first, end_s, HOUR_S) if h + HOUR_S <= end_s}
    for flow in flows:
        hour = hours.get(flow.time_s - flow.time_s % HOUR_S)
        if hour is None:
            continue
        if flow.inflow:
            hour.inflow += flow.amount
        else:
            hour.outflow += flow.amount
        if flow.amount >= min_value:
            hour.large += 1
    return hours


def flow_observations(
    feed: ResolvedFeed, hours: dict[int, HourFlows], members: Iterable[str], lag_s: float, source: str
) -> list[Observation]:
    """``event_time`` the hour's start, ``available_at`` its end plus ``lag_s``."""
    wanted = set(members)
    out: list[Observation] = []
    for start, totals in sorted(hours.items()):
        event = start * NS_PER_SECOND
        available = (start + HOUR_S) * NS_PER_SECOND + int(lag_s * NS_PER_SECOND)
        for member, value in totals.values().items():
            if member in wanted:
                out.append(Observation(series_for(feed, member, None), event, available, value, source))
    return out
