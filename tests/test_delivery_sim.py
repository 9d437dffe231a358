"""The delivery model on its own: deterministic, budget-safe, and moved by what buyers
control (bids, device bid adjustments, targeting breadth, pacing, caps, feedback)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adcp_agent.clock import SimulatedClock
from adcp_agent.services import pacing
from adcp_agent.services.delivery_sim import (
    HOUR,
    HourOutput,
    PackageModel,
    Progress,
    device_mix,
    simulate_hour,
    win_rate,
)

START = datetime(2031, 3, 3, tzinfo=UTC)
MODEL = PackageModel(
    package_id="pkg_a",
    guaranteed=False,
    pricing_model="cpm",
    rate=4.0,
    floor=3.5,
    budget=2000.0,
    impressions_goal=None,
    pacing="even",
    daily_impressions=100_000,  # tight supply: bids matter
    devices=device_mix(["display"], None),
    ctr=0.002,
    viewability=0.7,
)


def run(
    model: PackageModel, hours: int = 96, flight_hours: int = 96, weight: float = 1.0
) -> list[HourOutput]:
    progress, out = Progress(), []
    end = START + timedelta(hours=flight_hours)
    for h in range(hours):
        hour = START + h * HOUR
        result = simulate_hour(
            model, progress, hour=hour, start=START, end=end, seed=f"mb_x|{h}", weight=weight
        )
        progress.add(hour, result)
        out.append(result)
    return out


def spend(hours: list[HourOutput]) -> float:
    return sum(h.spend for h in hours)


def impressions(hours: list[HourOutput]) -> int:
    return sum(h.impressions for h in hours)


def test_same_seed_same_delivery() -> None:
    assert run(MODEL) == run(MODEL)
    # A different seed string changes the noise, not the scale.
    other = [
        simulate_hour(MODEL, Progress(), hour=START, start=START, end=START + 96 * HOUR, seed=s)
        for s in ("a", "b")
    ]
    assert other[0] != other[1]


def test_budget_is_never_overspent_and_nothing_after_the_flight() -> None:
    greedy = replace(MODEL, pacing="asap", budget=300.0, daily_impressions=5_000_000)
    hours = run(greedy, hours=72, flight_hours=48)
    assert spend(hours) <= 300.0
    assert spend(hours) > 299.0  # asap spends it all, early
    assert all(h.impressions == 0 for h in hours[48:])


def test_even_pacing_tracks_the_curve_and_front_loaded_runs_ahead() -> None:
    roomy = replace(MODEL, daily_impressions=5_000_000)
    even = run(roomy, hours=48)
    front = run(replace(roomy, pacing="front_loaded"), hours=48)
    expected = 2000 * pacing.expected_share("even", 48 / 96)
    assert abs(spend(even) - expected) / expected < 0.05
    assert spend(front) > spend(even) * 1.3


def test_higher_bids_win_more_and_device_adjustments_shift_delivery() -> None:
    assert win_rate(3.0, 3.5) == 0.0
    assert win_rate(3.5, 3.5) < win_rate(4.0, 3.5) < win_rate(5.25, 3.5) <= 0.95
    low, high = run(MODEL, hours=24), run(replace(MODEL, rate=5.25), hours=24)
    assert impressions(high) > impressions(low) * 1.5
    mobile_down = run(replace(MODEL, bid_adjustments={"mobile": -50}), hours=24)
    assert impressions(mobile_down) < impressions(low) * 0.7  # half the traffic lost


def test_narrow_targeting_and_daily_cap_limit_delivery() -> None:
    roomy = replace(MODEL, daily_impressions=5_000_000)
    narrow = replace(roomy, daily_impressions=5_000_000 * 0.08)  # one region
    assert impressions(run(narrow, hours=24)) < impressions(run(roomy, hours=24))
    capped = replace(roomy, pacing="asap", day_cap=100.0)
    hours = run(capped, hours=72)
    for day in range(3):
        assert spend(hours[day * 24 : (day + 1) * 24]) <= 100.0 + 1e-6
    assert device_mix(["ctv"], ["mobile"]) == {}


def test_feedback_weight_moves_delivery() -> None:
    roomy = replace(MODEL, daily_impressions=5_000_000)
    better, worse = run(roomy, hours=48, weight=1.4), run(roomy, hours=48, weight=0.6)
    assert spend(better) > spend(worse) * 2


def test_simulated_clock_persists_and_only_moves_forward(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    clock = SimulatedClock(START, path)
    assert clock.simulated and clock.now() == START
    clock.advance(timedelta(hours=5))
    assert SimulatedClock(START - timedelta(days=9), path).now() == START + 5 * HOUR
    with pytest.raises(ValueError):
        clock.advance(timedelta(0))
