"""Checking a call's arguments against the remote function's (or method's) signature at the
call site, as Ray does: ``f.remote(1, 2, 3)`` on ``def f(a)`` raises ``TypeError`` in the
caller, not later in a worker.

A signature travels with an actor's method table (to other processes, through the control
store), so it is kept as plain data, ``Params``: ``(name, kind, has_default)`` per parameter;
the defaults themselves (which may not pickle) are never needed to check a call. The
check runs on every ``.remote()``, so the common shapes are decided without building a
``BoundArguments``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

Params = tuple[tuple[str, int, bool], ...]
"""A signature as data: ``(name, inspect.Parameter kind, has a default)`` per parameter."""

_NO_DEFAULT = inspect.Parameter.empty
_DEFAULT = object()  # stands for any default value when a signature is rebuilt from Params
_POS_OR_KW = inspect.Parameter.POSITIONAL_OR_KEYWORD
_VAR_POS = inspect.Parameter.VAR_POSITIONAL
_VAR_KW = inspect.Parameter.VAR_KEYWORD
_KINDS = {int(k): k for k in (inspect.Parameter.POSITIONAL_ONLY, _POS_OR_KW, _VAR_POS, inspect.Parameter.KEYWORD_ONLY,
                              _VAR_KW)}


def params_of(fn: Any, drop_first: bool = False) -> Params | None:
    """``fn``'s parameters as data (``drop_first``: a method's ``self``); None when the
    callable has no signature to read (a builtin, an extension type)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    ps = list(sig.parameters.values())
    if drop_first and ps and ps[0].kind in (inspect.Parameter.POSITIONAL_ONLY, _POS_OR_KW):
        ps = ps[1:]
    return tuple((p.name, int(p.kind), p.default is not _NO_DEFAULT) for p in ps)


def method_params(cls: type, name: str) -> Params | None:
    """The parameters a call of method ``name`` passes (``self``/``cls`` are not among them)."""
    static = inspect.getattr_static(cls, name, None)
    if isinstance(static, staticmethod):
        return params_of(getattr(cls, name))
    if isinstance(static, classmethod):
        return params_of(getattr(cls, name))  # bound to the class: cls is already gone
    return params_of(getattr(cls, name), drop_first=True)


@functools.lru_cache(maxsize=4096)
def _checker(params: Params) -> tuple[int, int, bool, inspect.Signature]:
    """``(fewest, most positional arguments, takes any arguments at all, signature)`` for a
    fast check of positional-only calls, and the full signature for everything else."""
    kinds = [k for _, k, _ in params]
    anything = set(kinds) == {_VAR_POS, _VAR_KW}  # (*args, **kwargs): every call fits
    simple = all(k in (inspect.Parameter.POSITIONAL_ONLY, _POS_OR_KW) for k in kinds)
    fewest = sum(1 for _, _, d in params if not d) if simple else -1
    most = len(params) if simple else -1
    sig = inspect.Signature([inspect.Parameter(n, _KINDS[k], default=_DEFAULT if d else _NO_DEFAULT)
                             for n, k, d in params])
    return fewest, most, anything, sig


_by_id: dict[int, tuple[Params, tuple[int, int, bool, inspect.Signature]]] = {}
"""The checker of each Params object seen, by identity: a call's check hashes nothing."""


def check_call(params: Params | None, args: tuple, kwargs: dict[str, Any], what: str) -> None:
    """Raise ``TypeError`` (naming ``what``, e.g. ``"f.remote()"``) when the arguments do not
    fit ``params``; nothing to check when ``params`` is None."""
    if params is None:
        return
    known = _by_id.get(id(params))
    if known is None or known[0] is not params:  # first call with this table entry (or its id was reused)
        if len(_by_id) >= 4096:  # handles unpickled anew bring new tables: keep this bounded
            _by_id.clear()
        known = _by_id[id(params)] = (params, _checker(params))
    fewest, most, anything, sig = known[1]
    if anything or (not kwargs and fewest <= len(args) <= most):
        return
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{what}: {exc}") from None
