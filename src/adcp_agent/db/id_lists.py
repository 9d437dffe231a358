"""Prebuilt statements over a list of ids (``WHERE media_buy_id IN (...)``).

An expanding bind parameter (``bindparam(..., expanding=True)``) takes any number of
ids, but SQLAlchemy re-renders the compiled SQL for each execution to fit the list
(~25 µs per statement on SQLite, a third of running it). Most lists are short — a
buyer polling one buy — so a statement is also built for each length up to ``SHORT``,
with one plain bind parameter per id: compiled once, then only executed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, bindparam
from sqlalchemy.sql import Executable

SHORT = 4

InClause = Callable[[Any], ColumnElement[bool]]  # column -> "column IN (the ids)"


class ByIds:
    """``build`` receives a function that turns a column into "column IN (the ids)"
    and returns the statement; ``bind(ids, **params)`` gives the statement to run for
    those ids and its parameters."""

    def __init__(self, build: Callable[[InClause], Executable]) -> None:
        self._any = build(lambda column: column.in_(bindparam("ids", expanding=True)))
        self._short = {
            n: build(lambda column, n=n: column.in_([bindparam(f"id_{i}") for i in range(n)]))
            for n in range(1, SHORT + 1)
        }

    def bind(self, ids: Sequence[Any], **params: Any) -> tuple[Any, dict[str, Any]]:
        short = self._short.get(len(ids))
        if short is None:
            return self._any, {**params, "ids": list(ids)}
        return short, {**params, **{f"id_{i}": value for i, value in enumerate(ids)}}
