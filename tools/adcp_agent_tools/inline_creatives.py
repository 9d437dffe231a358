"""Creatives sent inline with a buy's packages (AdCP ``packages[].creatives`` on
create_media_buy, and on update_media_buy's ``new_packages``): they enter the buyer's
creative library exactly as sync_creatives would take them — validated against their
formats, reviewed under the publisher's policy — all or none (strict), before anything
is booked, and are then assigned to their packages like ``creative_assignments``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from adcp_agent.errors import AdcpError
from adcp_agent.services import creatives as library
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState
from adcp_agent_tools.creatives import CreativeAsset, creative_in
from adcp_agent_tools.results import AdcpErrors

_SENT = re.compile(r"^creatives\[\d+\]")


async def sync_inline(
    state: AppState,
    caller: Caller,
    account_ref: dict[str, Any] | None,
    groups: Sequence[tuple[str, Sequence[CreativeAsset]]],
) -> None:
    """Put each package's inline creatives (``groups``: the package's place in the
    request, e.g. ``packages[1]``, and its creatives) in the library; if any is invalid
    nothing is stored and every error names its place
    (``packages[1].creatives[0].assets…``)."""
    where: dict[str, str] = {}  # creative id -> where it was first sent
    unique: list[CreativeAsset] = []
    for place, creatives in groups:
        for j, c in enumerate(creatives):
            if c.creative_id in where:
                first = next(u for u in unique if u.creative_id == c.creative_id)
                if first.model_dump() != c.model_dump():
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        f"Creative '{c.creative_id}' is sent twice, differently.",
                        field=f"{place}.creatives[{j}].creative_id",
                    )
                continue
            where[c.creative_id] = f"{place}.creatives[{j}]"
            unique.append(c)
    if not unique:
        return
    try:
        await library.sync(
            state, caller, [creative_in(c) for c in unique], account_ref=account_ref, strict=True
        )
    except library.SyncRefused as refused:
        errors = []
        for item in refused.items:
            for e in item.errors:
                at = where[item.creative_id]
                e.field = _SENT.sub(at, e.field) if e.field else at
                errors.append(e)
        raise AdcpErrors(errors) from None
