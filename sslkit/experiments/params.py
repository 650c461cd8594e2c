"""Checking an experiment's parameters against its ``run`` signature, with clear errors.

The type a parameter takes is its annotation (``int``, ``float``, ``str | None``, ``dict``,
``list``, ...), so a parameter whose default is ``None`` is checked too.
"""
from __future__ import annotations

import ast
import inspect
import types
import typing


def parse_value(text: str):
    """``"0.01"`` -> 0.01, ``"[1, 2]"`` -> [1, 2], ``"None"`` -> None; anything else stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def accepts(annotation, value) -> bool:
    """Whether ``value`` fits ``annotation``: unions, ``None``, plain classes and generics
    (``list[int]`` checks the container only); an int fits a float; a bool fits only a bool;
    a list and a tuple fit each other."""
    if annotation in (inspect.Parameter.empty, typing.Any):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(accepts(a, value) for a in typing.get_args(annotation))
    if annotation is None or annotation is type(None):
        return value is None
    base = typing.get_origin(annotation) or annotation
    if isinstance(value, bool) or base is bool:
        return isinstance(value, bool) and base is bool
    if base is float:
        return isinstance(value, (int, float))
    if base in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, base) if isinstance(base, type) else True


def _type_name(annotation) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def check(fn, params: dict) -> dict:
    """``params`` if every name is a keyword parameter of ``fn`` and every value fits its
    annotation; else a ``ValueError`` naming the bad parameter (and the valid names)."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    names = [n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key, value in params.items():
        if key not in names:
            raise ValueError(f"unknown parameter {key!r} for {fn.__module__}.run; valid: {', '.join(names)}")
        annotation = hints.get(key, inspect.Parameter.empty)
        if not accepts(annotation, value):
            raise ValueError(f"parameter {key!r} should be {_type_name(annotation)}, got {value!r}")
    return params


def missing(fn, params: dict) -> list[str]:
    """The parameters of ``fn`` without a default that ``params`` does not set."""
    return [n for n, p in inspect.signature(fn).parameters.items()
            if p.default is p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n not in params]


def merge(params: dict, fixed: dict, *, by: str) -> dict:
    """``params`` and ``fixed`` together; a ``ValueError`` if ``params`` sets a name that ``fixed``
    (set ``by`` the caller, e.g. a notebook or the command line's own options) already sets."""
    clash = sorted(set(params) & set(fixed))
    if clash:
        raise ValueError(f"parameter(s) {clash} are set by {by}; set them there instead")
    return {**params, **fixed}
