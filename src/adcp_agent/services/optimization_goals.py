"""AdCP optimization goals on packages (``packages[].optimization_goals``): what a
package's delivery pursues beyond spending its budget.

Metric goals are served — ``clicks``, ``views`` (viewable impressions) and
``completed_views`` where the product's channels measure them (``metric_optimization``
on each product) — with no target (as much of the metric as the budget buys), a
``cost_per`` target (a cost per click / view / completed view not to exceed) or a
``threshold_rate`` target (a click, viewability or completion rate to reach). The
primary goal (the lowest ``priority``; else the first) steers the simulated ad server
(``delivery_sim``): it buys the impressions likelier to produce the metric (a higher
rate, at some loss of reach), and a target it cannot meet at the package's price
narrows what it buys rather than being missed. Event goals (conversions) and vendor
metrics are refused: this publisher does not optimise toward them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adcp_agent.db.models import Product
from adcp_agent.errors import AdcpError

# What each channel's delivery measures (and so can optimise toward).
METRICS_BY_CHANNEL: dict[str, tuple[str, ...]] = {
    "display": ("clicks", "views"),
    "olv": ("clicks", "views", "completed_views"),
    "ctv": ("views", "completed_views"),
    "streaming_audio": ("completed_views",),
    "podcast": ("completed_views",),
}
TARGETS = ("cost_per", "threshold_rate")
MAX_GOALS = 3


@dataclass(frozen=True)
class Goal:
    metric: str  # clicks | views | completed_views
    target: str | None = None  # cost_per | threshold_rate
    value: float | None = None


def supported_metrics(product: Product) -> list[str]:
    seen: dict[str, None] = {}
    for channel in product.channels:
        for metric in METRICS_BY_CHANNEL.get(channel, ()):
            seen[metric] = None
    return list(seen)


def product_wire(product: Product, ad_server: str) -> dict[str, Any] | None:
    """A product's ``metric_optimization`` (None: it measures nothing to optimise, or
    its publisher's ad server pursues no goal)."""
    metrics = supported_metrics(product) if ad_server == SIMULATED else []
    if not metrics:
        return None
    return {"supported_metrics": metrics, "supported_targets": list(TARGETS)}


# The ad server that pursues goals: the simulated one (adapters.MOCK). GAM, Kevel and
# Triton lines carry no goal this agent could set, so a goal there is refused.
SIMULATED = "mock"


def check_ad_server(ad_server: str, packages: Sequence[tuple[Any, str]]) -> None:
    """Goals only where the buy's ad server pursues them; ``packages`` are (package,
    where) pairs."""
    if ad_server == SIMULATED:
        return
    for package, where in packages:
        if package.optimization_goals:
            raise AdcpError(
                "UNSUPPORTED_FEATURE",
                f"This publisher's ad server ({ad_server}) takes no optimization goal on a "
                "line; book without optimization_goals. Nothing was booked.",
                field=f"{where}.optimization_goals",
            )


def validate(goals: Any, product: Product, where: str) -> list[dict[str, Any]] | None:
    """``goals`` checked against what the product optimises; their stored form."""
    if goals is None:
        return None
    field = f"{where}.optimization_goals"
    if not isinstance(goals, list) or not goals or len(goals) > MAX_GOALS:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"optimization_goals is a list of 1 to {MAX_GOALS} goals.",
            field=field,
        )
    metrics = supported_metrics(product)
    out: list[dict[str, Any]] = []
    for i, goal in enumerate(goals):
        at = f"{field}[{i}]"
        if not isinstance(goal, dict):
            raise AdcpError("VALIDATION_ERROR", "A goal is an object.", field=at)
        kind = goal.get("kind")
        if kind in ("event", "vendor_metric"):
            raise AdcpError(
                "UNSUPPORTED_FEATURE",
                f"'{kind}' optimization goals are not offered; this publisher optimises "
                f"toward {', '.join(metrics) or 'no metric'}. Nothing was booked.",
                field=f"{at}.kind",
            )
        if kind != "metric":
            raise AdcpError(
                "VALIDATION_ERROR",
                "A goal's kind is metric, event or vendor_metric.",
                field=f"{at}.kind",
            )
        metric = goal.get("metric")
        if metric not in metrics:
            raise AdcpError(
                "UNSUPPORTED_FEATURE",
                f"'{product.product_id}' does not optimise toward {metric!r}. Nothing was booked.",
                field=f"{at}.metric",
                suggestion=f"It optimises toward: {', '.join(metrics) or 'nothing'} "
                "(get_products' metric_optimization).",
            )
        stored: dict[str, Any] = {"kind": "metric", "metric": metric}
        target = goal.get("target")
        if target is not None:
            stored["target"] = _target(target, metric, f"{at}.target")
        priority = goal.get("priority")
        if priority is not None:
            if isinstance(priority, bool) or not isinstance(priority, int) or priority < 1:
                raise AdcpError(
                    "VALIDATION_ERROR", "priority is a whole number from 1.", field=f"{at}.priority"
                )
            stored["priority"] = priority
        out.append(stored)
    return out


def _target(target: Any, metric: str, at: str) -> dict[str, Any]:
    kind = target.get("kind") if isinstance(target, dict) else None
    value = target.get("value") if isinstance(target, dict) else None
    if kind not in TARGETS:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"A target's kind is one of: {', '.join(TARGETS)}.",
            field=f"{at}.kind",
        )
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise AdcpError("VALIDATION_ERROR", "A target's value is above 0.", field=f"{at}.value")
    if kind == "threshold_rate" and value >= 1:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"A {metric} rate is a proportion below 1 (0.002 for 0.2%).",
            field=f"{at}.value",
        )
    return {"kind": kind, "value": float(value)}


def primary(goals: Sequence[dict[str, Any]] | None) -> Goal | None:
    """The goal delivery pursues: the lowest priority number; else the first."""
    if not goals:
        return None
    ranked = sorted(
        enumerate(goals), key=lambda pair: (pair[1].get("priority", pair[0] + 1), pair[0])
    )
    goal = ranked[0][1]
    target = goal.get("target") or {}
    return Goal(goal["metric"], target.get("kind"), target.get("value"))


# How much an optimiser raises a metric's rate by buying the impressions likelier to
# produce it, the most it can reach, and the reach it gives up doing so.
LIFT = {"clicks": 1.35, "views": 1.2, "completed_views": 1.1}
CEILING = {"clicks": 0.05, "views": 0.98, "completed_views": 0.99}
REACH_KEPT = 0.8
_RATE_OF = {"clicks": "ctr", "views": "viewability", "completed_views": "completion_rate"}


@dataclass(frozen=True)
class Shaped:
    """A package's delivery rates and the share of its supply it still buys."""

    ctr: float
    viewability: float
    completion_rate: float
    supply: float = 1.0


def shape(goal: Goal | None, rates: Shaped, cost_per_mille: float) -> Shaped:
    """``rates`` as the optimiser pursuing ``goal`` leaves them, at ``cost_per_mille``
    (what the package pays for a thousand impressions). A target it cannot meet at the
    natural rate narrows the impressions it buys to those that do meet it."""
    if goal is None:
        return rates
    name = _RATE_OF[goal.metric]
    natural = getattr(rates, name)
    if natural <= 0:
        return rates
    rate = min(CEILING[goal.metric], natural * LIFT[goal.metric])
    supply = REACH_KEPT
    needed = 0.0
    if goal.target == "threshold_rate" and goal.value:
        needed = goal.value
    elif goal.target == "cost_per" and goal.value and cost_per_mille > 0:
        needed = cost_per_mille / 1000 / goal.value  # the rate that meets the cost
    if needed > rate:
        # Only the impressions that meet the target, fewer the further it is.
        supply *= 0.0 if needed > CEILING[goal.metric] else rate / needed
        rate = min(needed, CEILING[goal.metric])
    values = {"ctr": rates.ctr, "viewability": rates.viewability}
    values["completion_rate"] = rates.completion_rate
    values[name] = rate
    return Shaped(supply=supply, **values)


def unmeetable(
    goals: Sequence[dict[str, Any]] | None, pricing_model: str, rate: float
) -> str | None:
    """Why a cost target can never be met at the package's own price per unit (a
    cost per click below a CPC bid), or None."""
    paid = {"cpc": "clicks", "cpcv": "completed_views", "cpv": "completed_views"}
    for goal in goals or []:
        target = goal.get("target") or {}
        if (
            target.get("kind") == "cost_per"
            and paid.get(pricing_model) == goal["metric"]
            and target["value"] < rate
        ):
            return (
                f"A cost per {goal['metric'][:-1].replace('_', ' ')} of "
                f"{target['value']:.2f} is below the {rate:.2f} this package pays for one."
            )
    return None


def require_meetable(package: Any, where: str, nothing_done: str) -> None:
    """``unmeetable`` for a package's goals (its pricing model and rate) as an error
    naming ``where``'s goals; ``nothing_done`` ends the message."""
    unmet = unmeetable(package.optimization_goals, package.pricing_model, package.rate)
    if unmet:
        raise AdcpError(
            "VALIDATION_ERROR", f"{unmet} {nothing_done}", field=f"{where}.optimization_goals"
        )
