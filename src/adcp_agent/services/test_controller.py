"""``comply_test_controller``: AdCP's standard tool for driving a seller deterministically.

This module parses a scenario's params, dispatches it to the service that does the work
(``sandbox_status``, ``sandbox_delivery``, ``sandbox_arms``, ``sandbox_seeds``, the
adapter pool's upstream faults) and answers in the controller's response shapes. Every
failure is an answer — ``{success: false, error, error_detail, current_state}`` — never
a tool error; scenarios we do not implement (and unknown strings) answer
``UNKNOWN_SCENARIO``. Who may call it at all is decided before (``sandbox.Scope``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adcp_agent.errors import AdcpError
from adcp_agent.services import sandbox_arms, sandbox_delivery, sandbox_seeds, sandbox_status
from adcp_agent.services.adapters import ANY_TOOL, FAULTABLE_TOOLS
from adcp_agent.services.identity import Caller
from adcp_agent.services.sandbox import ControllerError, Scope, open_scope
from adcp_agent.state import AppState

Payload = dict[str, Any]
MediaBuyStatus = Literal[
    "pending_creatives", "pending_start", "active", "paused", "completed", "rejected", "canceled"
]
CreativeStatus = Literal[
    "processing", "pending_review", "approved", "suspended", "rejected", "archived"
]
AccountStatus = Literal[
    "active", "pending_approval", "rejected", "payment_required", "suspended", "closed"
]
DEFAULT_UPSTREAM = "ad_server"
UNRECORDED = ("conversions", "reach", "frequency", "reach_window", "viewability")


class _Params(BaseModel):
    model_config = ConfigDict(extra="allow")  # params are open for extension


class ForceMediaBuyStatus(_Params):
    media_buy_id: str
    status: MediaBuyStatus
    rejection_reason: str | None = None


class ForceCreativeStatus(_Params):
    creative_id: str
    status: CreativeStatus
    rejection_reason: str | None = None


class ForceAccountStatus(_Params):
    account_id: str
    status: AccountStatus


class ForceTaskCompletion(_Params):
    task_id: str = Field(max_length=128)
    result: dict[str, Any]


class ForceUpstream(_Params):
    tool: str
    upstream_name: str | None = None
    reset: bool = Field(default=False, description="Extension: make the upstream reachable.")


class ForceArm(_Params):
    arm: Literal["submitted", "input-required"]
    task_id: str | None = Field(default=None, max_length=128)
    message: str | None = Field(default=None, max_length=2000)


class Money(_Params):
    amount: float = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


# Per simulate_delivery call: the counts are added to 64-bit integer columns, and 2^63
# at once failed as an unexpected error (two calls of 2^62 broke every later delivery
# read of the buy, its sum past what SQLite adds up).
MAX_SIMULATED = 10**12


class SimulateDelivery(_Params):
    media_buy_id: str
    impressions: int = Field(default=0, ge=0, le=MAX_SIMULATED)
    clicks: int = Field(default=0, ge=0, le=MAX_SIMULATED)
    reported_spend: Money | None = None


class SimulateBudgetSpend(_Params):
    spend_percentage: float = Field(ge=0, le=100)
    media_buy_id: str | None = None
    account_id: str | None = None

    @model_validator(mode="after")
    def _target(self) -> SimulateBudgetSpend:
        if self.media_buy_id is None and self.account_id is None:
            raise ValueError("give media_buy_id or account_id")
        return self


class SeedProduct(_Params):
    product_id: str
    fixture: dict[str, Any] = {}


class SeedPricingOption(_Params):
    product_id: str
    pricing_option_id: str
    fixture: dict[str, Any] = {}


class SeedCreative(_Params):
    creative_id: str
    fixture: dict[str, Any] = {}


class SeedCreativeFormat(_Params):
    format_id: str
    fixture: dict[str, Any] = {}


class SeedMediaBuy(_Params):
    media_buy_id: str
    fixture: dict[str, Any] = {}


class SeedAccount(_Params):
    account_id: str
    fixture: dict[str, Any] = {}


def _transition(t: sandbox_status.Transition) -> Payload:
    return {
        "success": True,
        "previous_state": t.previous,
        "current_state": t.current,
        "message": t.message,
    }


def _seeded(message: str) -> Payload:
    return {"success": True, "message": message}


async def _force_buy(scope: Scope, p: ForceMediaBuyStatus) -> Payload:
    return _transition(
        await sandbox_status.force_media_buy_status(
            scope, p.media_buy_id, p.status, p.rejection_reason
        )
    )


async def _force_creative(scope: Scope, p: ForceCreativeStatus) -> Payload:
    return _transition(
        await sandbox_status.force_creative_status(
            scope, p.creative_id, p.status, p.rejection_reason
        )
    )


async def _force_account(scope: Scope, p: ForceAccountStatus) -> Payload:
    return _transition(await sandbox_status.force_account_status(scope, p.account_id, p.status))


async def _force_task(scope: Scope, p: ForceTaskCompletion) -> Payload:
    return _transition(await sandbox_status.force_task_completion(scope, p.task_id, p.result))


async def _force_upstream(scope: Scope, p: ForceUpstream) -> Payload:
    if p.tool not in (*FAULTABLE_TOOLS, ANY_TOOL):
        raise ControllerError(
            "INVALID_PARAMS",
            f"'{p.tool}' calls no upstream here; use one of "
            f"{', '.join((*FAULTABLE_TOOLS, ANY_TOOL))}.",
        )
    account = await scope.account()
    faults, tenant_id = scope.state.upstream_faults, scope.tenant.tenant_id
    upstream = p.upstream_name or DEFAULT_UPSTREAM
    was = faults.registered(tenant_id, account.account_id, p.tool)
    if p.reset:
        faults.clear(tenant_id, account.account_id, p.tool)
    else:
        faults.set(tenant_id, account.account_id, p.tool, upstream)
    previous = "available" if was is None else "unavailable"
    current = "available" if p.reset else "unavailable"
    return {
        "success": True,
        "previous_state": previous,
        "current_state": current,
        "message": f"Upstream '{was or upstream}' for {p.tool} on sandbox account "
        f"{account.account_id} is {current}.",
    }


def _arm(tool: str) -> Callable[[Scope, ForceArm], Awaitable[Payload]]:
    async def register(scope: Scope, p: ForceArm) -> Payload:
        d = await sandbox_arms.register(scope, tool, p.arm, p.task_id, p.message)
        forced: Payload = {"arm": d.arm}
        if d.task_id:
            forced["task_id"] = d.task_id
        return {
            "success": True,
            "forced": forced,
            "message": f"The next {tool} from sandbox account {d.account_id} will return the "
            f"{d.arm} arm.",
        }

    return register


async def _simulate_delivery(scope: Scope, p: SimulateDelivery) -> Payload:
    spend = p.reported_spend
    out = await sandbox_delivery.simulate_delivery(
        scope,
        p.media_buy_id,
        impressions=p.impressions,
        clicks=p.clicks,
        spend=spend.amount if spend else None,
        currency=spend.currency if spend else None,
    )

    def metrics(m: sandbox_delivery.Metrics) -> Payload:
        return {
            "impressions": m.impressions,
            "clicks": m.clicks,
            "reported_spend": {"amount": m.spend, "currency": out.currency},
        }

    notes = [f"Recorded on media buy {p.media_buy_id}."]
    if out.capped:
        notes.append("Spend was capped at the budget the packages had left.")
    ignored = [name for name in UNRECORDED if name in (p.model_extra or {})]
    if ignored:
        notes.append(f"Not recorded (not reported by this seller): {', '.join(ignored)}.")
    return {
        "success": True,
        "simulated": metrics(out.simulated),
        "cumulative": metrics(out.cumulative),
        "message": " ".join(notes),
    }


async def _simulate_budget(scope: Scope, p: SimulateBudgetSpend) -> Payload:
    out = await sandbox_delivery.simulate_budget_spend(
        scope, p.spend_percentage, media_buy_id=p.media_buy_id, account_id=p.account_id
    )
    return {
        "success": True,
        "simulated": {
            "spend_percentage": out.spend_percentage,
            "computed_spend": out.computed_spend,
            "budget": out.budget,
            "currency": out.currency,
        },
        "message": f"Spend is now {out.reached_percentage:g}% of the budget.",
    }


async def _seed_product(scope: Scope, p: SeedProduct) -> Payload:
    return _seeded(await sandbox_seeds.seed_product(scope, p.product_id, p.fixture))


async def _seed_pricing(scope: Scope, p: SeedPricingOption) -> Payload:
    return _seeded(
        await sandbox_seeds.seed_pricing_option(scope, p.product_id, p.pricing_option_id, p.fixture)
    )


async def _seed_creative(scope: Scope, p: SeedCreative) -> Payload:
    return _seeded(await sandbox_seeds.seed_creative(scope, p.creative_id, p.fixture))


async def _seed_format(scope: Scope, p: SeedCreativeFormat) -> Payload:
    return _seeded(await sandbox_seeds.seed_creative_format(scope, p.format_id, p.fixture))


async def _seed_buy(scope: Scope, p: SeedMediaBuy) -> Payload:
    return _seeded(await sandbox_seeds.seed_media_buy(scope, p.media_buy_id, p.fixture))


async def _seed_account(scope: Scope, p: SeedAccount) -> Payload:
    return _seeded(await sandbox_seeds.seed_account(scope, p.account_id, p.fixture))


@dataclass(frozen=True)
class Scenario:
    params: type[_Params]
    run: Callable[[Scope, Any], Awaitable[Payload]]


SCENARIOS: dict[str, Scenario] = {
    "force_media_buy_status": Scenario(ForceMediaBuyStatus, _force_buy),
    "force_creative_status": Scenario(ForceCreativeStatus, _force_creative),
    "force_account_status": Scenario(ForceAccountStatus, _force_account),
    "force_task_completion": Scenario(ForceTaskCompletion, _force_task),
    "force_upstream_unavailable": Scenario(ForceUpstream, _force_upstream),
    "force_create_media_buy_arm": Scenario(ForceArm, _arm("create_media_buy")),
    "force_get_products_arm": Scenario(ForceArm, _arm("get_products")),
    "force_get_signals_arm": Scenario(ForceArm, _arm("get_signals")),
    "simulate_delivery": Scenario(SimulateDelivery, _simulate_delivery),
    "simulate_budget_spend": Scenario(SimulateBudgetSpend, _simulate_budget),
    "seed_account": Scenario(SeedAccount, _seed_account),
    "seed_product": Scenario(SeedProduct, _seed_product),
    "seed_pricing_option": Scenario(SeedPricingOption, _seed_pricing),
    "seed_creative": Scenario(SeedCreative, _seed_creative),
    "seed_creative_format": Scenario(SeedCreativeFormat, _seed_format),
    "seed_media_buy": Scenario(SeedMediaBuy, _seed_buy),
}


def _failure(exc: ControllerError) -> Payload:
    out: Payload = {"success": False, "error": exc.code, "error_detail": exc.detail}
    if exc.current_state is not None:
        out["current_state"] = exc.current_state
    return out


def _params(model: type[_Params], raw: dict[str, Any]) -> _Params:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ControllerError(
            "INVALID_PARAMS", f"params{'.' + where if where else ''}: {first['msg']}."
        ) from None


async def run(
    state: AppState,
    caller: Caller,
    scenario: str,
    account: dict[str, Any] | None,
    params: dict[str, Any] | None,
) -> Payload:
    """Run one controller request and answer in the controller's response shapes."""
    if scenario == "list_scenarios":
        return {"success": True, "scenarios": list(SCENARIOS)}
    try:
        spec = SCENARIOS.get(scenario)
        if spec is None:
            raise ControllerError(
                "UNKNOWN_SCENARIO", f"Scenario {scenario} is not implemented by this agent."
            )
        if not account:
            raise ControllerError("INVALID_PARAMS", "account ({sandbox: true}) is required.")
        if account.get("sandbox") is not True:
            raise ControllerError(
                "FORBIDDEN", "The test controller only acts on sandbox: true accounts."
            )
        scope = await open_scope(state, caller, account)
        return await spec.run(scope, _params(spec.params, params or {}))
    except ControllerError as exc:
        return _failure(exc)
    except AdcpError as exc:
        code = "INTERNAL_ERROR" if exc.recovery == "transient" else "INVALID_PARAMS"
        return _failure(ControllerError(code, f"{exc.code}: {exc.message}"))
