"""The time delivery is simulated, reported and paced against.

Production reads the wall clock. With ``sim_clock`` on, time stands still until an admin
(or a test) advances it, so a simulation can be replayed hour by hour and every figure
is reproducible. The simulated instant is saved under the data dir after each advance:
a restarted server resumes where the simulation was, so delivery already materialised
never lies in the clock's future.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from adcp_agent.config import Settings

CLOCK_FILE = "sim-clock.json"


def parse_instant(value: object) -> datetime | None:
    """An ISO 8601 time with a zone (``Z`` or an offset) as an aware UTC datetime; None
    for anything else (another type, no zone, not a time)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


class Clock(Protocol):
    @property
    def simulated(self) -> bool: ...

    def now(self) -> datetime: ...


class RealClock:
    """The wall clock, in UTC."""

    simulated = False

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that moves only when told to. ``path`` keeps the instant across restarts
    (written atomically); without one the clock lives in memory."""

    simulated = True

    def __init__(self, start: datetime, path: Path | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs a time zone")
        self._path = path
        self._now = start.astimezone(UTC)
        if path is not None and path.exists():
            saved = json.loads(path.read_text())
            self._now = datetime.fromisoformat(saved["now"]).astimezone(UTC)
        else:
            self._save()

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta <= timedelta(0):
            raise ValueError("a clock only moves forward")
        self._now += delta
        self._save()
        return self._now

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with tmp.open("w") as fh:
            json.dump({"now": self._now.isoformat()}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)


def build_clock(settings: Settings) -> Clock:
    if not settings.sim_clock:
        return RealClock()
    start = settings.sim_clock_start or floor_hour(datetime.now(UTC))
    return SimulatedClock(start, settings.data_dir / CLOCK_FILE)
