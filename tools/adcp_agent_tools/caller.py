"""The current caller, resolved once per tool call by the middleware."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from adcp_agent.services.identity import Caller

_current: ContextVar[Caller | None] = ContextVar("adcp_caller", default=None)
# Set only by in-process callers (REST chat, /api/tools) that authenticated the request
# themselves; never reachable from an MCP request.
_preset: ContextVar[Caller | None] = ContextVar("adcp_preset_caller", default=None)


def current_caller() -> Caller:
    caller = _current.get()
    if caller is None:  # the middleware always sets it; this is a wiring bug
        raise RuntimeError("tool called outside the adcp middleware")
    return caller


def set_caller(caller: Caller) -> object:
    return _current.set(caller)


def reset_caller(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


@contextmanager
def preset_caller(caller: Caller) -> Iterator[None]:
    token = _preset.set(caller)
    try:
        yield
    finally:
        _preset.reset(token)


def get_preset_caller() -> Caller | None:
    return _preset.get()
