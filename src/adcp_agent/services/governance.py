"""Buyers' governance agents (AdCP 3.1 campaign governance, seller side).

``sync_governance`` binds one governance agent to each of a buyer's accounts (replace
semantics): its MCP URL and the credential this agent presents to it (sealed). From
then on nothing is committed on the account without the agent's verdict: a buy
(``purchase``), a change to one (``modification``) and a signal activation are each
sent to its ``check_governance`` — with the plan the buy is booked under, what will
actually run (``planned_delivery``) and the governance context of the action's
lifecycle — before the ad server is called or anything is written.

- ``approved``: the work goes ahead; the buy keeps the agent's governance context and
  the check's id (every later check carries the context).
- ``denied``: ``GOVERNANCE_DENIED`` with the agent's explanation and findings; nothing
  was booked or changed.
- ``conditions``: also ``GOVERNANCE_DENIED`` (the buyer's request must change to meet
  them; this agent does not rewrite a buy), the conditions in ``details``.
- no verdict (unreachable, timed out, refused, not MCP, malformed): ``GOVERNANCE_UNAVAILABLE``
  (transient); a plan the agent does not know: ``PLAN_NOT_FOUND``.

Governance agents are called like webhooks: HTTPS, the SSRF guard (a tenant's
``features.allow_private_webhooks`` admits private addresses), pinned connections, a
deadline (``ADCP_AGENT_GOVERNANCE_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adcp_agent.clock import parse_instant
from adcp_agent.db.models import Product, Tenant
from adcp_agent.db.models_accounts import Account
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import accounts, audit, buy_history, catalog, mcp_calls, ssrf
from adcp_agent.services.identity import Caller
from adcp_agent.services.media_buys import snapshot
from adcp_agent.state import AppState

log = logging.getLogger(__name__)

SCHEMES = ("Bearer",)
PLAN_FIELD = "plan_id"
# Changes that only stop spending are not held up by the governance agent: a buyer must
# always be able to pause or cancel.
UNCHECKED_CHANGES = frozenset({"pause", "package_pause", "cancel", "package_cancel", "archive"})
_DENIED_HINT = (
    "Restructure the request (e.g. a smaller budget), escalate to your spending "
    "authority, or ask the governance agent."
)


@dataclass
class SyncOutcome:
    account: Account | None  # None: the reference matched none of the caller's accounts
    errors: list[AdcpError] = field(default_factory=list)


@dataclass(frozen=True)
class Approval:
    check_id: str | None
    governance_context: str | None
    expires_at: str | None
    # When the agent wants delivery figures next (phase delivery), if it does.
    next_check: datetime | None = None

    def keep(self, buy: MediaBuy) -> None:
        """Record the approval on ``buy`` (a row about to be written)."""
        buy.governance_context = self.governance_context
        buy.governance_check_id = self.check_id
        buy.governance_next_check = self.next_check


def governed(account: Account) -> bool:
    return account.governance_url is not None


def wire_agents(account: Account) -> list[dict[str, str]] | None:
    """An account's ``governance_agents`` as AdCP shows them (credentials never)."""
    return [{"url": account.governance_url}] if account.governance_url else None


def _agent(entry: dict[str, Any], where: str, tenant: Tenant) -> tuple[str, str, str]:
    """(url, scheme, credentials) of an entry's one governance agent, or AdcpError."""
    agents = entry.get("governance_agents")
    if not isinstance(agents, list) or len(agents) != 1:
        raise AdcpError(
            "VALIDATION_ERROR",
            "governance_agents takes exactly one agent: an account binds one governance "
            "agent, which owns every plan on it.",
            field=f"{where}.governance_agents",
        )
    agent, at = agents[0], f"{where}.governance_agents[0]"
    if not isinstance(agent, dict):
        raise AdcpError("VALIDATION_ERROR", "An agent is {url, authentication}.", field=at)
    extra = sorted(set(agent) - {"url", "authentication"})
    if extra:
        raise AdcpError("VALIDATION_ERROR", f"Unknown agent field '{extra[0]}'.", field=at)
    url = agent.get("url")
    if not isinstance(url, str) or not url.startswith("https://") or len(url) > 2048:
        raise AdcpError(
            "VALIDATION_ERROR",
            "A governance agent's url must be an https:// URL (at most 2,048 characters).",
            field=f"{at}.url",
        )
    ssrf.check_registration(url, ssrf.Allowance.from_features(tenant.features), f"{at}.url")
    auth = agent.get("authentication")
    if not isinstance(auth, dict):
        raise AdcpError(
            "VALIDATION_ERROR",
            "authentication ({schemes: ['Bearer'], credentials}) is required: it is what "
            "this agent presents to your governance agent.",
            field=f"{at}.authentication",
        )
    schemes, credentials = auth.get("schemes"), auth.get("credentials")
    if set(auth) - {"schemes", "credentials"} or not isinstance(schemes, list) or len(schemes) != 1:
        raise AdcpError(
            "VALIDATION_ERROR",
            "authentication is {schemes: [one scheme], credentials}.",
            field=f"{at}.authentication",
        )
    if schemes[0] not in SCHEMES:
        raise AdcpError(
            "UNSUPPORTED_FEATURE",
            f"Governance agents are called with a Bearer credential; '{schemes[0]}' is not "
            "offered.",
            field=f"{at}.authentication.schemes",
        )
    if not isinstance(credentials, str) or not 32 <= len(credentials) <= 4096:
        raise AdcpError(
            "VALIDATION_ERROR",
            "credentials must be 32 to 4,096 characters.",
            field=f"{at}.authentication.credentials",
        )
    return url, schemes[0], credentials


async def sync(
    state: AppState, caller: Caller, tenant: Tenant, entries: Sequence[dict[str, Any]]
) -> list[SyncOutcome]:
    """Bind each entry's governance agent to its account (one of the caller's), replacing
    the one bound before. Entries are independent: one that fails changes nothing."""
    caller.require_principal()
    linked = await accounts.linked(state.db, caller)
    outcomes: list[SyncOutcome] = []
    bindings: list[tuple[Account, str, str, str]] = []
    for i, entry in enumerate(entries):
        where = f"accounts[{i}]"
        try:
            ref = entry.get("account")
            if not isinstance(ref, dict):
                raise AdcpError("INVALID_REQUEST", "account is required.", field=f"{where}.account")
            account = accounts.match(linked, ref, f"{where}.account")
            if any(bound.account_id == account.account_id for bound, *_ in bindings):
                raise AdcpError(
                    "VALIDATION_ERROR",
                    f"Account '{account.account_id}' is named twice; it binds one agent.",
                    field=f"{where}.account",
                )
        except AdcpError as exc:
            outcomes.append(SyncOutcome(None, [exc]))
            continue
        try:
            url, scheme, credentials = _agent(entry, where, tenant)
        except AdcpError as exc:
            outcomes.append(SyncOutcome(account, [exc]))
            continue
        outcomes.append(SyncOutcome(account))
        bindings.append((account, url, scheme, state.secrets.seal(credentials)))
    if bindings:
        async with state.db.transaction() as session:
            for account, url, scheme, sealed in bindings:
                stored = await session.get(Account, account.account_id)
                if stored is None or stored.tenant_id != caller.tenant_id:
                    continue
                before = stored.governance_url
                stored.governance_url, stored.governance_scheme = url, scheme
                stored.governance_credentials = sealed
                session.add(stored)
                await audit.record(
                    session,
                    caller,
                    "account.governance_synced",
                    target_type="account",
                    target_id=account.account_id,
                    before={"governance_url": before},
                    after={"governance_url": url},
                )
                account.governance_url, account.governance_scheme = url, scheme
    return outcomes


async def account_for(state: AppState, buy: MediaBuy) -> Account | None:
    """The buy's account when a governance agent is bound to it, else None."""
    async with state.db.session() as session:
        account = await session.get(Account, buy.account_id)
    return account if account is not None and governed(account) else None


def require_plan(account: Account, plan_id: str | None) -> str:
    if plan_id:
        return plan_id
    raise AdcpError(
        "INVALID_REQUEST",
        f"Account '{account.account_id}' has a governance agent: plan_id (the governance "
        "plan this buy is made under) is required. Nothing was booked.",
        field=PLAN_FIELD,
        suggestion="Send the plan_id your governance agent issued (sync_plans).",
    )


def _countries(packages: Iterable[Package], products: dict[str, Product]) -> list[str]:
    countries: set[str] = set()
    for p in packages:
        targeted = (p.targeting or {}).get("geo_countries") or (p.targeting or {}).get(
            "geo_country_any_of"
        )
        product = products.get(p.product_id)
        countries.update(targeted or (product.countries if product else None) or [])
    return sorted(countries)


def planned_delivery(
    buy: MediaBuy, packages: Sequence[Package], products: dict[str, Product]
) -> dict[str, Any]:
    """What will actually run (AdCP ``planned-delivery``): the flight, the budget, where
    and on which channels, for the packages that are not canceled."""
    running = [p for p in packages if p.canceled_at is None]
    plan: dict[str, Any] = {
        "start_time": buy.start_time.isoformat().replace("+00:00", "Z"),
        "end_time": buy.end_time.isoformat().replace("+00:00", "Z"),
        "total_budget": round(sum(p.budget for p in running), 2),
        "currency": buy.currency,
    }
    channels = sorted(
        {c for p in running for c in getattr(products.get(p.product_id), "channels", None) or []}
    )
    if channels:
        plan["channels"] = channels
    countries = _countries(running, products)
    regions = sorted({r for p in running for r in (p.targeting or {}).get("geo_regions") or []})
    geo = ({"countries": countries} if countries else {}) | (
        {"regions": regions} if regions else {}
    )
    if geo:
        plan["geo"] = geo
    caps = [
        p.targeting["frequency_cap"] for p in running if (p.targeting or {}).get("frequency_cap")
    ]
    if len(caps) == 1:
        plan["frequency_cap"] = caps[0]
    return plan


async def check(
    state: AppState,
    tenant: Tenant,
    account: Account,
    *,
    plan_id: str,
    what: str,
    phase: str = "purchase",
    purchase_type: str = "media_buy",
    governance_context: str | None = None,
    planned: dict[str, Any] | None = None,
    modification_summary: str | None = None,
    delivery_metrics: dict[str, Any] | None = None,
) -> Approval:
    """The account's governance agent's approval of ``what`` (e.g. "this media buy"), or
    the AdcpError its verdict (or its silence) comes to."""
    arguments: dict[str, Any] = {
        "plan_id": plan_id,
        "caller": state.agent_url,
        "purchase_type": purchase_type,
        "phase": phase,
    }
    if governance_context:
        arguments["governance_context"] = governance_context
    if planned is not None:
        arguments["planned_delivery"] = planned
    if modification_summary:
        arguments["modification_summary"] = modification_summary[:1000]
    if delivery_metrics is not None:
        arguments["delivery_metrics"] = delivery_metrics
    url = account.governance_url or ""
    try:
        credentials = state.secrets.open(account.governance_credentials or "")
        answer = await mcp_calls.call_tool(
            url,
            "check_governance",
            arguments,
            headers={"Authorization": f"Bearer {credentials}"},
            allowance=ssrf.Allowance.from_features(tenant.features),
            tls=state.outbound_tls(),
            seconds=state.settings.governance_timeout_seconds,
        )
    except (mcp_calls.CallFailed, ssrf.BlockedDestination) as exc:
        log.warning("governance agent %s: no verdict for %s: %s", url, plan_id, exc)
        raise _unavailable(url, str(exc)) from None
    # An approval's expiry is real time (the agent's clock), not the business clock.
    return _verdict(answer, url, plan_id, what, governance_context, utcnow())


def _unavailable(url: str, why: str) -> AdcpError:
    return AdcpError(
        "GOVERNANCE_UNAVAILABLE",
        f"The governance agent at {url} gave no verdict ({why}); nothing was committed.",
        recovery="transient",
        suggestion="Retry with backoff; if it stays unreachable, contact the plan's "
        "governance operator.",
        details={"governance_agent": url},
    )


def _verdict(
    answer: mcp_calls.ToolAnswer,
    url: str,
    plan_id: str,
    what: str,
    context: str | None,
    now: datetime,
) -> Approval:
    content = answer.content
    errors = content.get("errors")
    if answer.is_error or errors:
        first = (
            errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        )
        if first.get("code") == "PLAN_NOT_FOUND":
            raise AdcpError(
                "PLAN_NOT_FOUND",
                f"Your governance agent does not know plan '{plan_id}'; nothing was committed.",
                field=PLAN_FIELD,
                suggestion="Verify plan_id, or register the plan with sync_plans first.",
            )
        said = first.get("message") or first.get("code") or "an error"
        raise _unavailable(url, f"it answered {said}")
    verdict = content.get("verdict") or content.get("status")  # 3.0 named it status
    check_id = content.get("check_id") if isinstance(content.get("check_id"), str) else None
    explanation = str(content.get("explanation") or "").strip()
    details: dict[str, Any] = {"plan_id": plan_id, "check_id": check_id, "governance_agent": url}
    if verdict == "approved":
        expires = content.get("expires_at")
        if expires is not None:
            until = parse_instant(expires)
            if until is None:
                raise _unavailable(url, f"its approval's expires_at {expires!r} is not a time")
            if until <= now:
                raise _unavailable(url, f"its approval had expired at {expires}")
        token = content.get("governance_context")
        return Approval(
            check_id,
            token if isinstance(token, str) and token else context,
            expires if isinstance(expires, str) else None,
            parse_instant(content.get("next_check")),
        )
    if verdict == "denied":
        findings = content.get("findings") if isinstance(content.get("findings"), list) else []
        told = explanation or "; ".join(
            str(f.get("explanation"))
            for f in findings
            if isinstance(f, dict) and f.get("explanation")
        )
        raise AdcpError(
            "GOVERNANCE_DENIED",
            f"Your governance agent denied {what} under plan '{plan_id}'"
            + (f": {told}" if told else "")
            + ". Nothing was committed.",
            field=PLAN_FIELD,
            suggestion=_DENIED_HINT,
            details={**details, "explanation": explanation, "findings": findings},
        )
    if verdict == "conditions":
        conditions = (
            content.get("conditions") if isinstance(content.get("conditions"), list) else []
        )
        told = "; ".join(
            f"{c.get('field')}: {c.get('reason')}" for c in conditions if isinstance(c, dict)
        )
        raise AdcpError(
            "GOVERNANCE_DENIED",
            f"Your governance agent approved {what} under plan '{plan_id}' only with "
            f"conditions ({told or explanation or 'see details'}). Nothing was committed: "
            "change the request to meet them and send it again.",
            field=PLAN_FIELD,
            suggestion="Apply the conditions in details.conditions and retry.",
            details={**details, "explanation": explanation, "conditions": conditions},
        )
    raise _unavailable(url, "its answer carries no verdict")


async def check_change(
    state: AppState,
    caller: Caller,
    tenant: Tenant,
    buy: MediaBuy,
    packages: Sequence[Package],
    planned_buy: MediaBuy,
    planned_packages: Sequence[Package],
    kinds: Sequence[str],
    governance_context: str | None,
) -> Approval | None:
    """The governance agent's approval of a change to a buy booked under a plan, on an
    account that has one (None when there is nothing to check: no plan, no agent now,
    or a change that only stops spending)."""
    if buy.plan_id is None or all(kind in UNCHECKED_CHANGES for kind in kinds):
        return None
    account = await account_for(state, buy)
    if account is None:
        return None
    _action, summary, _package = buy_history.summarise_change(
        snapshot(buy, packages),
        snapshot(planned_buy, planned_packages),
        {"operations": list(kinds)},
        buy.currency,
    )
    products = (await catalog.tenant_catalog(state.db, caller)).products_by_id
    return await check(
        state,
        tenant,
        account,
        plan_id=buy.plan_id,
        what=f"this change to media buy {buy.media_buy_id}",
        phase="modification",
        governance_context=governance_context or buy.governance_context,
        planned=planned_delivery(planned_buy, planned_packages, products),
        modification_summary=summary,
    )
