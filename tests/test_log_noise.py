"""A buyer's mistakes are answered, not logged as the server's problems."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from adcp_agent_tools.app import FASTMCP_SERVER_LOG

from tests.support import DEMO_TOKEN, LiveServer, call, mcp_client


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _fastmcp_log(level: int) -> Iterator[list[logging.LogRecord]]:
    logger = logging.getLogger(FASTMCP_SERVER_LOG)
    kept, before = _Kept(), logger.level
    logger.addHandler(kept)
    logger.setLevel(level)
    try:
        yield kept.records
    finally:
        logger.removeHandler(kept)
        logger.setLevel(before)


async def test_invalid_arguments_are_a_typed_error_and_no_server_warning(
    live: LiveServer,
) -> None:
    """FastMCP warned on every call its schema refused (a multi-line record each): an
    agent retrying bad arguments flooded the log, and a benchmark whose server log went
    to an unread pipe hung once it filled. The caller gets VALIDATION_ERROR naming the
    field; the server logs it at DEBUG, only when asked to."""
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        with _fastmcp_log(logging.INFO) as quiet:
            refused = await call(client, "get_products", {"brief": 42})
        with _fastmcp_log(logging.DEBUG) as verbose:
            await call(client, "get_products", {"brief": ["a list"]})
    [error] = refused.data["errors"]
    assert refused.is_error and error["code"] == "VALIDATION_ERROR"
    assert error["field"] == "brief"
    assert [r.getMessage() for r in quiet] == []
    [debug] = [r for r in verbose if "Invalid arguments" in r.getMessage()]
    assert debug.levelno == logging.DEBUG and "get_products" in debug.getMessage()
