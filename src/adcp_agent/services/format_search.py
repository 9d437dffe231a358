"""list_creative_formats' filters over the publisher's formats (a catalog of tens: they
are matched in memory)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adcp_agent.db.models import CreativeFormat


@dataclass(frozen=True)
class FormatQuery:
    """Each filter given must match. Dimension bounds are inclusive and match formats
    with fixed dimensions only (audio has none); responsive formats are visual formats
    without fixed dimensions."""

    format_ids: Sequence[str] = ()
    name_search: str | None = None
    min_width: int | None = None
    max_width: int | None = None
    min_height: int | None = None
    max_height: int | None = None
    is_responsive: bool | None = None
    type: str | None = None  # AdCP's format type: display, video, audio (or dooh: none)

    def matches(self, f: CreativeFormat) -> bool:
        if self.format_ids and f.format_id not in self.format_ids:
            return False
        if self.type is not None and f.kind != self.type:
            return False
        if self.name_search and self.name_search.lower() not in f.name.lower():
            return False
        bounds = (self.min_width, self.max_width, self.min_height, self.max_height)
        if any(b is not None for b in bounds):
            if f.width is None or f.height is None:
                return False
            for value, low, high in (
                (f.width, self.min_width, self.max_width),
                (f.height, self.min_height, self.max_height),
            ):
                if (low is not None and value < low) or (high is not None and value > high):
                    return False
        if self.is_responsive is not None:
            responsive = f.kind != "audio" and f.width is None
            if responsive != self.is_responsive:
                return False
        return True
