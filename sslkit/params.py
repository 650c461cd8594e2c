"""Checking an experiment's parameters against its ``run`` signature, with clear errors."""
from __future__ import annotations

import ast
import inspect


def parse_value(text: str):
    """``"0.01"`` -> 0.01, ``"[1, 2]"`` -> [1, 2], ``"None"`` -> None; anything else stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check(fn, params: dict) -> dict:
    """``params`` if every name is a parameter of ``fn`` whose default has a compatible type;
    else a ``ValueError`` naming the bad parameter and the valid ones."""
    sig = inspect.signature(fn)
    names = [n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key, value in params.items():
        if key not in names:
            raise ValueError(f"unknown parameter {key!r} for {fn.__module__}.run; valid: {', '.join(names)}")
        default = sig.parameters[key].default
        if default is None or default is inspect.Parameter.empty or value is None:
            continue
        ok = isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int)) \
            or (isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)))
        if not ok or (isinstance(default, (int, float)) and isinstance(value, bool) != isinstance(default, bool)):
            raise ValueError(f"parameter {key!r} should be {type(default).__name__} like its default "
                             f"{default!r}, got {value!r}")
    return params


def merge(params: dict, fixed: dict, *, by: str) -> dict:
    """``params`` and ``fixed`` together; a ``ValueError`` if ``params`` sets a name that ``fixed``
    (set ``by`` the caller, e.g. a notebook or the command line's own options) already sets."""
    clash = sorted(set(params) & set(fixed))
    if clash:
        raise ValueError(f"parameter(s) {clash} are set by {by}; set them there instead")
    return {**params, **fixed}
