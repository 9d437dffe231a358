"""How performance feedback steers delivery.

A buy *allows optimisation* when it has at least two auction (non-guaranteed) packages:
only then is there somewhere to shift delivery to, and only auction lines are free to
move (guaranteed lines deliver their contracted goal whatever the feedback says).
Each auction package's latest package-level ``performance_index`` (1.0 when it has
none) is compared with the buy's average; the ratio, kept within [0.5, 1.6], becomes
the package's weight in the simulator: it paces ahead of (or behind) its curve and bids
harder (or softer) by that factor. Budgets stay hard limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adcp_agent.db.models_delivery import PerformanceFeedback
from adcp_agent.db.models_media import Package

MIN_WEIGHT, MAX_WEIGHT = 0.5, 1.6


def optimisable(packages: Sequence[Package]) -> list[Package]:
    """The packages feedback can move, or [] when the buy does not allow optimisation."""
    auction = [p for p in packages if not p.guaranteed]
    return auction if len(auction) >= 2 else []


def weights(
    packages: Sequence[Package], feedback: Sequence[PerformanceFeedback], at: datetime
) -> dict[str, float]:
    """Per-package weights in force at ``at`` (feedback applies from when it arrived)."""
    movable = optimisable(packages)
    if not movable:
        return {}
    latest: dict[str, tuple[datetime, float]] = {}
    for item in feedback:
        if item.package_id is None or item.received_at > at:
            continue
        seen = latest.get(item.package_id)
        if seen is None or item.received_at >= seen[0]:
            latest[item.package_id] = (item.received_at, item.performance_index)
    if not any(p.package_id in latest for p in movable):
        return {}
    scores = {p.package_id: latest.get(p.package_id, (at, 1.0))[1] for p in movable}
    mean = sum(scores.values()) / len(scores)
    if mean <= 0:
        return {}
    return {pid: min(max(s / mean, MIN_WEIGHT), MAX_WEIGHT) for pid, s in scores.items()}
