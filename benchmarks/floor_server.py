"""The floor: a bare FastMCP server with one no-op tool, served exactly as adcp-agent
serves MCP (same fastmcp, ``stateless_http=True``, ``json_response=True``, mounted at
``/mcp`` in a Starlette app with ``/health``, run by uvicorn). Whatever this costs is
the price of the transport; everything adcp-agent adds on top is measured against it.

    python benchmarks/floor_server.py --port 8100
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from fastmcp import FastMCP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route


def build_app() -> Starlette:
    mcp = FastMCP("floor")

    @mcp.tool
    def noop(brief: str = "") -> dict[str, str]:
        """Does nothing; answers at once (the cheapest possible tool call)."""
        return {"status": "ok"}

    mcp_app = mcp.http_app(path="/", stateless_http=True, json_response=True)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with mcp_app.lifespan(app):
            yield

    return Starlette(
        routes=[Route("/health", health), Mount("/mcp", app=mcp_app)], lifespan=lifespan
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    uvicorn.run(build_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
