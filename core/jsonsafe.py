"""JSON from outside (request bodies, websocket frames, forms, tenant backends): parsed without surprises.

`json.loads` itself accepts nesting until the interpreter's recursion limit, and everything that walks
the result afterwards (validators, serializers, JSON columns, encoders) recurses again, so a few hundred
brackets (an 800-byte body) end in RecursionError: a 500 for the API, a dead websocket, a failed tool
call. Every untrusted document goes through `loads` (or `check` after another parser), which refuses
nesting deeper than MAX_DEPTH and text no database column can store (NUL, unpaired surrogates), with a
ValueError subclass that callers already treat as bad JSON. The walk is iterative: it cannot recurse.
"""

import json
import math

# Deep enough for any real configuration (tool schemas nest objects in arrays in objects a few levels).
MAX_DEPTH = 64


class UnsafeJSON(ValueError):
    """Valid JSON we refuse to hold: `reason` is "too_deep" or "unstorable"."""

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
        return False
    return True


def check(value, *, max_depth: int = MAX_DEPTH):
    """Return `value` if it nests at most `max_depth` deep and all its strings can be stored; else UnsafeJSON."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not _storable(item):
                raise UnsafeJSON(
                    "The JSON contains a NUL character (\\u0000) or an unpaired surrogate.", reason="unstorable"
                )
            continue
        if isinstance(item, float) and not math.isfinite(item):  # 1e400 parses to inf: no JSON column stores it
            raise UnsafeJSON("The JSON contains a number too large to store (infinity or NaN).", reason="unstorable")
        if not isinstance(item, dict | list):
            continue
        if depth > max_depth:
            raise UnsafeJSON(f"The JSON nests deeper than {max_depth} levels.", reason="too_deep")
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        else:
            stack.extend((child, depth + 1) for child in item)
    return value


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH, **kwargs):
    """json.loads for untrusted text: ValueError (JSONDecodeError or UnsafeJSON) for anything we refuse."""
    try:
        value = json.loads(text, **kwargs)
    except RecursionError as exc:  # deeper than the interpreter's stack, before our own limit is checked
        raise UnsafeJSON(f"The JSON nests deeper than {max_depth} levels.", reason="too_deep") from exc
    return check(value, max_depth=max_depth)
