"""AdCP 3.1 request fields this agent does not act on, refused by name.

AdCP request objects are open (``additionalProperties``), and so are our argument
models: a field a tool does not declare is dropped before the tool runs. For most that
is right (``ext``, ``context``, hints a seller may ignore). For the fields below it is
not: dropping them would book, change or list something other than what the buyer
asked — a buy booked without the measurement terms it was negotiated on, a creative
put on placements that are not sold separately. Each is refused with
UNSUPPORTED_FEATURE naming the field (and what to do instead) before anything is
done. The middleware checks every call's raw arguments against this table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from adcp_agent.errors import AdcpError
from adcp_agent_tools.results import not_applied

# (value at the path, the whole arguments) -> whether the request asks for it
Asks = Callable[[Any, dict[str, Any]], bool]


def _given(value: Any, arguments: dict[str, Any]) -> bool:
    return value not in (None, False, [], {}, "")


def _instant(value: Any) -> datetime | str | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value


def _not_the_buys_estimate(value: Any, arguments: dict[str, Any]) -> bool:
    buys = arguments.get("agency_estimate_number") or arguments.get("po_number")
    return value is not None and value != buys


def _equal(expected: Any) -> Asks:
    return lambda value, arguments: value == expected


_NOT_BOOKED = "; nothing was booked."
_TERMS = "Negotiated {} are not offered by this publisher" + _NOT_BOOKED
_PLACEMENTS = (
    "A creative serves wherever its package runs; assigning it to placements within a "
    "package is not offered."
)
_FORMATS = (
    "Canonical format selectors are not offered: choose a package's formats with "
    "format_ids (list_creative_formats lists them)"
)
_WEBHOOKS = (
    "This agent reports through reporting_webhook, push_notification_config and "
    "get_media_buy_delivery; {} is not offered."
)

REFUSED: dict[str, list[tuple[str, Asks, str]]] = {
    "create_media_buy": [
        (
            "packages[].agency_estimate_number",
            _not_the_buys_estimate,
            "The order carries one estimate number (agency_estimate_number); one per "
            "package is not offered" + _NOT_BOOKED,
        ),
        ("packages[].format_kind", _given, _FORMATS + _NOT_BOOKED),
        ("packages[].format_option_refs", _given, _FORMATS + _NOT_BOOKED),
        ("packages[].params", _given, _FORMATS + _NOT_BOOKED),
        ("proposal_id", _given, "Proposals are not offered; send packages" + _NOT_BOOKED),
        ("packages[].measurement_terms", _given, _TERMS.format("measurement terms")),
        ("packages[].performance_standards", _given, _TERMS.format("performance standards")),
        ("packages[].committed_metrics", _given, _TERMS.format("committed metrics")),
        ("packages[].catalogs", _given, "Catalog-driven packages are not offered" + _NOT_BOOKED),
        (
            "packages[].creative_assignments[].placement_ids",
            _given,
            _PLACEMENTS + _NOT_BOOKED,
        ),
        (
            "packages[].creative_assignments[].placement_refs",
            _given,
            _PLACEMENTS + _NOT_BOOKED,
        ),
        ("artifact_webhook", _given, _WEBHOOKS.format("artifact_webhook")),
        ("io_acceptance", _given, "Insertion-order acceptance is not offered" + _NOT_BOOKED),
        (
            "invoice_recipient",
            _given,
            "Invoices go to the account's billing contact; a recipient per buy is not "
            "offered" + _NOT_BOOKED,
        ),
    ],
    "update_media_buy": [
        (
            "packages[].creative_assignments[].placement_ids",
            _given,
            _PLACEMENTS + " Nothing was changed.",
        ),
        (
            "packages[].creative_assignments[].placement_refs",
            _given,
            _PLACEMENTS + " Nothing was changed.",
        ),
        (
            "invoice_recipient",
            _given,
            "Invoices go to the account's billing contact; a recipient per buy is not "
            "offered. Nothing was changed.",
        ),
    ],
    "sync_creatives": [
        ("assignments[].placement_ids", _given, _PLACEMENTS + " Nothing was synced."),
        ("creatives[].placement_ids", _given, _PLACEMENTS + " Nothing was synced."),
        ("creatives[].placement_refs", _given, _PLACEMENTS + " Nothing was synced."),
        (
            "creatives[].status",
            _given,
            "A creative's status is set by the publisher's review, not by the buyer; omit "
            "it. Nothing was synced.",
        ),
    ],
    "list_creatives": [
        ("filters.has_served", _equal(True), "Filtering by delivery is not offered."),
        ("filters.concept_ids", _given, "Creative concepts are not offered."),
        ("filters.has_variables", _equal(True), "Dynamic (DCO) creatives are not offered."),
    ],
}


# A package added to a buy (update_media_buy new_packages) is a create_media_buy package.
def _unchanged(message: str) -> str:
    told = message.removesuffix(_NOT_BOOKED)
    return told + (" Nothing was changed." if told.endswith(".") else "; nothing was changed.")


REFUSED["update_media_buy"] += [
    ("new_" + path, asks, _unchanged(message))
    for path, asks, message in REFUSED["create_media_buy"]
    if path.startswith("packages[]")
]


# Reads whose AdCP answers carry ``errors`` beside the answer. An argument such a tool
# does not declare is dropped (AdCP requests are open) — and reported there as
# UNSUPPORTED_FEATURE, so the buyer knows the answer was not shaped by it.
REPORTS_UNAPPLIED = frozenset(
    {
        "get_products",
        "list_creative_formats",
        "get_signals",
        "get_media_buys",
        "list_creatives",
        "get_media_buy_delivery",
    }
)
# Arguments that change nothing in an answer this agent gives: dropped without a word.
QUIET = frozenset(
    {
        # envelope and extension fields; a read has nothing to do twice
        "context",
        "ext",
        "adcp_version",
        "adcp_major_version",
        "idempotency_key",
        # every answer is final when given: nothing is pushed later, nothing takes long
        "push_notification_config",
        "time_budget",
        # a conditional read may always be answered in full
        "if_pricing_version",
        "if_wholesale_feed_version",
        # AdCP: an omitted webhook_activity means the seller does not surface it
        "include_webhook_activity",
        "webhook_activity_limit",
        # no creative is purged, multi-asset (items) or dynamic (variables) here
        "include_purged",
        "include_items",
        "include_variables",
    }
)


def unapplied(tool: str, dropped: list[str]) -> list[dict[str, Any]]:
    """Warnings (``results.not_applied``) for the undeclared arguments ``dropped`` from
    a call of ``tool``."""
    if tool not in REPORTS_UNAPPLIED:
        return []
    return not_applied((name, True) for name in dropped if name not in QUIET)


def _found(node: Any, parts: list[str], where: str) -> Iterator[tuple[str, Any]]:
    """(concrete path, value) of each value at ``parts`` below ``node``."""
    if not parts:
        yield where, node
        return
    head, rest = parts[0], parts[1:]
    many = head.endswith("[]")
    name = head[:-2] if many else head
    if not isinstance(node, dict) or name not in node:
        return
    value, at = node[name], f"{where}.{name}" if where else name
    if not many:
        yield from _found(value, rest, at)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _found(item, rest, f"{at}[{i}]")


# Each path split once; a check is skipped unless its top-level argument is there (a
# booking carries ~20 checks: ~12 µs, under 1% of its CPU).
_CHECKS = {
    tool: [(path.split(".")[0].removesuffix("[]"), path.split("."), asks, message)
           for path, asks, message in checks]
    for tool, checks in REFUSED.items()
}  # fmt: skip


def refusal(tool: str, arguments: dict[str, Any]) -> AdcpError | None:
    """UNSUPPORTED_FEATURE for the first field of ``arguments`` this tool does not act
    on, or None."""
    for top, parts, asks, message in _CHECKS.get(tool, ()):
        if top not in arguments:
            continue
        for where, value in _found(arguments, parts, ""):
            if asks(value, arguments):
                return AdcpError("UNSUPPORTED_FEATURE", message, field=where)
    return None
