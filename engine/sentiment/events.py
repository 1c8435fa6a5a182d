"""Market events from keyword rules: the project's taxonomy and the rules that detect each type.

The model (engine/sentiment/model.py) answers with one type of the same taxonomy; an item's events are
the union of both (the model's counts from when it answered). Rules are deliberately narrow: an event
flag that fires on every price story is useless in a rule such as ``events.eth.hack_24h``.
"""

from __future__ import annotations

import re

__all__ = ["EVENT_TYPES", "detect_events"]

# type -> what it covers (docs/sentiment.md, "Events"). "none" is the model's answer for no event.
EVENT_TYPES: dict[str, str] = {
    "halving": "block-reward halving (BTC, LTC, BCH ...)",
    "fork": "hard/soft fork, network or protocol upgrade, mainnet launch",
    "hack": "hack, exploit, drained funds, stolen keys, rug pull, exit scam",
    "listing": "a coin listed on an exchange",
    "delisting": "a coin delisted or trading suspended on an exchange",
    "regulation": "regulators, courts, laws, ETFs (filings, approvals, rejections), lawsuits, bans",
    "partnership": "partnerships, integrations, adoption by a company or state",
    "outage": "network halt, exchange outage, withdrawals frozen",
    "macro": "rates, inflation, jobs, central banks, markets at large",
}

_RULES: dict[str, str] = {
    "halving": r"halving|halvening",
    "fork": r"hard fork|soft fork|forks?\b|network upgrade|protocol upgrade|upgrade (?:goes|went) live|mainnet launch\w*"
    r"|\b(?:dencun|pectra|shapella|taproot|fusaka)\b",
    "hack": r"hack(?:s|ed|er|ers)?\b|exploit(?:s|ed|er)?\b|drain(?:s|ed)?\b|stolen|theft|rug ?pull\w*|exit scam"
    r"|security breach|private keys? (?:leak|compromis)\w*",
    "delisting": r"delist\w*|(?:suspends?|halts?) trading|removes? .{0,30}trading pairs?",
    "listing": r"(?<!de)list(?:s|ed|ing)? (?!of\b)|to list\b|will list\b|adds? (?:support for )?.{0,30}trading",
    "regulation": r"\bsec\b|\bcftc\b|regulat\w*|\betfs?\b|lawsuit|sues|sued|court|judge|\bban(?:s|ned)?\b|legislat\w*"
    r"|\bbill\b|senate|congress|\bmica\b|licen[cs]e|crackdown|wells notice|cease and desist|sanction\w*",
    "partnership": r"partner(?:s|ship|ships|ed)?\b|integrat\w*|teams up|collaborat\w*|adopts?\b|adoption",
    "outage": r"outage|halted|halts? (?:block|network|production)|downtime|freezes? withdrawals|withdrawals? (?:frozen|halted|paused|suspended)"
    r"|network (?:halt|stall)\w*|goes? offline",
    "macro": r"\bfed\b|fomc|federal reserve|interest rates?|rate (?:cut|hike)s?|inflation|\bcpi\b|jobs report|payrolls"
    r"|recession|treasury yields?|\becb\b|tariffs?",
}
_COMPILED = {kind: re.compile(rf"(?<![\w-])(?:{body})", re.IGNORECASE) for kind, body in _RULES.items()}


def detect_events(title: str, summary: str = "") -> tuple[str, ...]:
    """Event types the title (or the first 500 characters of the summary) announces, taxonomy order."""
    text = f"{title}\n{summary[:500]}"
    found = [kind for kind, pattern in _COMPILED.items() if pattern.search(text)]
    if "delisting" in found and "listing" in found:
        found.remove("listing")
    return tuple(found)
