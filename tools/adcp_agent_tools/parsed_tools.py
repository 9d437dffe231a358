"""Each tool function's signature parsed once a process, not once an app.

Registering a tool makes fastmcp read the function's type hints and generate its
argument schema with pydantic: ~6 ms a tool, ~150 ms for the 25 tools of an app. A
server builds its app once, but the test suite builds hundreds (one per test app), so
that parse was ~20% of the suite's time. Our tool functions are closures over the app
state, defined anew by every ``build_mcp``; the schema depends only on the code, its
name and docstring, (string) annotations and defaults and the decorator's options,
never on the closure, so the first parse is kept and every later registration of the
same definition gets a copy bound to its own function.
"""

from __future__ import annotations

import copy
import inspect
import marshal
from collections.abc import Callable, Hashable
from typing import Any

from fastmcp.tools.function_tool import FunctionTool
from mcp.types import ToolAnnotations

# The decorator options the cache understands; any other sends the call to fastmcp.
OPTIONS = frozenset({"name", "title", "description", "annotations", "output_schema", "meta"})

_parsed: dict[Hashable, FunctionTool] = {}


def _unbound(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never called
    raise RuntimeError("a kept tool definition is only copied, never run")


def _key(fn: Callable[..., Any], options: dict[str, Any]) -> Hashable | None:
    """What the parse depends on, or None when it may depend on more (an annotation
    that is not a string, i.e. a module without ``from __future__ import annotations``,
    or a signature set by hand)."""
    inner = inspect.unwrap(fn)
    annotations = getattr(fn, "__annotations__", {})
    if not all(isinstance(a, str) for a in annotations.values()):
        return None
    if "__signature__" in vars(fn) or "__signature__" in vars(inner):
        return None
    return (
        fn.__code__,
        inner.__code__,
        fn.__module__,
        fn.__name__,
        fn.__doc__,
        inner.__doc__,
        tuple(annotations.items()),
        repr(inner.__defaults__),
        repr(inner.__kwdefaults__),
        repr(sorted(options.items())),
    )


def _copy(value: Any) -> Any:
    """A deep copy of a JSON-like value (marshal is ~5x faster than ``copy.deepcopy``)."""
    try:
        return marshal.loads(marshal.dumps(value))
    except ValueError:  # not only built-in types
        return copy.deepcopy(value)


def function_tool(fn: Callable[..., Any], options: dict[str, Any]) -> FunctionTool:
    """``FunctionTool.from_function(fn, **options)``, parsed at most once a definition."""
    if isinstance(options.get("annotations"), dict):
        options = {**options, "annotations": ToolAnnotations(**options["annotations"])}
    key = _key(fn, options)
    kept = _parsed.get(key) if key is not None else None
    if kept is None:
        tool = FunctionTool.from_function(fn, **options)
        if key is not None and "__signature__" not in vars(fn):
            _parsed[key] = tool.model_copy(update={"fn": _unbound})
        return tool
    # A deep copy of the schemas: each app owns its tools, as when parsed afresh.
    return kept.model_copy(
        update={
            "fn": fn,
            "parameters": _copy(kept.parameters),
            "output_schema": _copy(kept.output_schema),
            "annotations": copy.deepcopy(kept.annotations),
            "tags": set(kept.tags),
            "meta": _copy(kept.meta),
        }
    )
