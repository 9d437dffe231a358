"""``GET /health``: status, version and whether the database answers."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse

from adcp_agent import ADCP_VERSION, __version__
from adcp_agent.state import AppState


async def health(request: Request) -> JSONResponse:
    state: AppState = request.app.state.adcp
    db_ok = await state.db.ping()
    body = {
        "status": "healthy" if db_ok else "degraded",
        "version": __version__,
        "adcp_version": ADCP_VERSION,
        "database": "connected" if db_ok else "unreachable",
        "database_backend": state.db.engine.dialect.name,
        "uptime_seconds": round(time.monotonic() - state.started_at, 1),
    }
    return JSONResponse(body, status_code=200 if db_ok else 503)
