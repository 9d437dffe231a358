"""Values no JSON request should hold, found before anything acts on them.

Python's JSON parser is more lenient than JSON, and a few values that do parse cannot
be stored or sent on. Each of these used to fail deep inside a tool or a REST route as
an unexpected error (or, worse, not fail at all):

- a string with half of a UTF-16 surrogate pair (``"\\ud83d"`` alone is valid JSON; a
  pair decodes to one character, a lone half stays and no UTF-8 encoder takes it);
- a NUL character (U+0000): valid JSON, but PostgreSQL text cannot hold it;
- ``NaN`` and ``Infinity``: not JSON at all (a NaN budget slipped past every
  comparison);
- objects nested deeper than ``MAX_DEPTH`` (AdCP arguments nest ~6 deep; 300 levels
  overflowed a validator's recursion)."""

from __future__ import annotations

import math
import re
from typing import Any

MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")
_HALF_PAIR = "is not valid Unicode: it holds half of a UTF-16 surrogate pair"
_NUL = "holds a NUL character (U+0000)"


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return _NUL
    if text.isascii() or not _SURROGATE.search(text):
        return None
    return _HALF_PAIR


def malformed(value: Any, path: str = "", depth: int = 0) -> tuple[str, str] | None:
    """(path, what is wrong) of the first such value in ``value``, if any; the path
    names a field as errors do (``packages[0].budget``)."""
    if isinstance(value, str):
        problem = _string_problem(value)
        return None if problem is None else (path, problem)
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "is not a finite number")
    if isinstance(value, dict | list) and depth == MAX_DEPTH:
        return path, f"nests deeper than {MAX_DEPTH} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (problem := _string_problem(key)) is not None:
                # Named, but escaped: the name itself cannot go out as it is.
                escaped = here.encode("utf-8", "backslashreplace").decode()
                return escaped.replace("\x00", "\\x00"), problem
            if (found := malformed(item, here, depth + 1)) is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if (found := malformed(item, f"{path}[{i}]", depth + 1)) is not None:
                return found
    return None
