"""The result of a simulation: a JSON document with every step, its timing, the final
totals and the pacing of every package per day, plus two fingerprints that say what is
reproducible and what is not."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from simulations.journey import BuyerJourney
from simulations.records import BuyRun, Flight, PackageRun, iso
from simulations.scenarios import Scenario

FINGERPRINT_COVERS = (
    "The buyer's decisions and what the server answered, free of ids, timestamps and "
    "simulator noise: the seeded plan, every step (phase, tool, outcome, the products, "
    "signals and statuses offered), the packages booked with their budgets and bids, "
    "which days each package delivered, the feedback given and the final checks. The "
    "same seed against a fresh server gives the same value."
)
DELIVERY_FINGERPRINT_COVERS = (
    "The delivery figures themselves (impressions and spend per package per day). The "
    "server's delivery simulator seeds its hourly noise with the media buy and package "
    "ids it generates at random, so these match between runs only where delivery is "
    "noise-free (e.g. a guaranteed package that meets its goal)."
)


@dataclass(frozen=True)
class RunInfo:
    scenario: Scenario
    seed: int
    buyers: int
    flight: Flight
    run_id: str
    server_url: str
    server_started_here: bool
    clock_start: str
    phase_seconds: dict[str, float]


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _package_basis(p: PackageRun) -> dict[str, Any]:
    return {
        "key": p.key,
        "product_id": p.product_id,
        "pricing_option_id": p.pricing_option_id,
        "budget": p.budget,
        "bid_price": p.bid_price,
        "signals": p.signals,
        "format_id": p.format_id,
        "performance_index": p.performance_index,
        "delivered_on": [d.day for d in p.days if d.impressions > 0],
    }


def fingerprint(journeys: list[BuyerJourney]) -> str:
    return _digest(
        [
            {
                "buyer": j.name,
                "plan": asdict(j.plan),
                "completed": j.failure is None,
                "steps": [s.fingerprint_view() for s in j.session.steps],
                "buys": [
                    {"kind": b.kind, "packages": [_package_basis(p) for p in b.packages]}
                    for b in j.buys
                ],
                "feedback": [{k: v for k, v in f.items() if k != "message"} for f in j.feedback],
                "checks": j.checks,
            }
            for j in journeys
        ]
    )


def delivery_fingerprint(journeys: list[BuyerJourney]) -> str:
    return _digest(
        [
            [
                [(p.key, [(d.day, d.impressions, d.spend) for d in p.days]) for p in b.packages]
                for b in j.buys
            ]
            for j in journeys
        ]
    )


def optimisation(buy: BuyRun, first_feedback_day: int, days: int) -> list[dict[str, Any]]:
    """Each auction package's share of the buy's spend before and after the first
    feedback: the visible effect of telling the seller what performs."""

    def shares(first: int, last: int) -> list[float | None]:
        spent = [p.spend_between(first, last) for p in buy.planned]
        total = sum(spent)
        return [round(s / total, 4) if total else None for s in spent]

    before, after = shares(1, first_feedback_day), shares(first_feedback_day + 1, days)
    return [
        {
            "package": p.key,
            "product_id": p.product_id,
            "performance_index": p.performance_index,
            "spend_share_before": b,
            "spend_share_after": a,
        }
        for p, b, a in zip(buy.planned, before, after, strict=True)
    ]


def _buy_view(b: BuyRun) -> dict[str, Any]:
    return {
        "kind": b.kind,
        "media_buy_id": b.media_buy_id,
        "task_id": b.task_id,
        "status": b.status,
        "budget": b.budget,
        "impressions": sum(int(p.final.get("impressions", 0)) for p in b.packages),
        "spend": round(sum(float(p.final.get("spend", 0)) for p in b.packages), 2),
        "packages": [asdict(p) for p in b.packages],
        "revision": b.revision,
        "history": b.history,
    }


def _journey_view(j: BuyerJourney) -> dict[str, Any]:
    auction = [b for b in j.buys if b.kind == "auction" and b.packages and b.packages[0].days]
    return {
        "buyer": j.name,
        "brand": j.plan.brand,
        "completed": j.failure is None,
        "failure": j.failure,
        "plan": asdict(j.plan),
        "schedule": asdict(j.schedule),
        "signal": j.signal_id,
        "checks": j.checks,
        "problems": j.problems,
        "buys": [_buy_view(b) for b in j.buys],
        "feedback": j.feedback,
        "optimisation": optimisation(auction[0], j.schedule.feedback_days[0], j.flight.days)
        if auction and len(auction[0].packages[0].days) == j.flight.days
        else [],
        "steps": [asdict(s) for s in j.session.steps],
    }


def build_result(info: RunInfo, journeys: list[BuyerJourney]) -> dict[str, Any]:
    steps = [(j.name, s) for j in journeys for s in j.session.steps]
    packages = [p for j in journeys for b in j.buys for p in b.packages]
    slowest = sorted(steps, key=lambda pair: pair[1].ms, reverse=True)[:5]
    return {
        "simulation": {
            "scenario": info.scenario.name,
            "description": info.scenario.description,
            "seed": info.seed,
            "buyers": info.buyers,
            "days": info.flight.days,
            "run_id": info.run_id,
            "server_url": info.server_url,
            "server_started_here": info.server_started_here,
            "clock_start": info.clock_start,
            "flight": {"start": iso(info.flight.start), "end": iso(info.flight.end)},
        },
        "completed": all(j.failure is None for j in journeys),
        "failures": [j.failure for j in journeys if j.failure],
        "fingerprint": fingerprint(journeys),
        "fingerprint_covers": FINGERPRINT_COVERS,
        "delivery_fingerprint": delivery_fingerprint(journeys),
        "delivery_fingerprint_covers": DELIVERY_FINGERPRINT_COVERS,
        "timings": {
            "phases_s": info.phase_seconds,
            "steps": len(steps),
            "mean_step_ms": round(sum(s.ms for _, s in steps) / len(steps), 1) if steps else 0.0,
            "slowest_steps": [
                {"buyer": name, "n": s.n, "tool": s.tool, "label": s.label, "ms": s.ms}
                for name, s in slowest
            ],
        },
        "totals": {
            "budget": round(sum(p.budget for p in packages), 2),
            "spend": round(sum(float(p.final.get("spend", 0)) for p in packages), 2),
            "impressions": sum(int(p.final.get("impressions", 0)) for p in packages),
            "clicks": sum(int(p.final.get("clicks", 0)) for p in packages),
        },
        "journeys": [_journey_view(j) for j in journeys],
    }


def write_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
