"""``.remote()`` checks its arguments against the signature where the call is made, as Ray
does: a remote function's, an actor's ``__init__``'s, and each actor method's (also through a
handle found with ``get_actor``, and for static and class methods)."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tray
from tray.core._signatures import check_call, params_of


@tray.remote
class Calc:
    def __init__(self, start, step=1):
        self.value = start

    def add(self, x, *, times=1):
        return self.value + x * times

    def anything(self, *args, **kwargs):
        return len(args) + len(kwargs)

    @staticmethod
    def double(x):
        return 2 * x

    @classmethod
    def kind(cls, suffix):
        return cls.__name__ + suffix


def test_actor_methods_bind_at_the_call_site(ray):
    c = Calc.remote(10)
    with pytest.raises(TypeError, match=r"Calc.add.remote\(\): missing a required argument: 'x'"):
        c.add.remote()
    with pytest.raises(TypeError, match="too many positional arguments"):
        c.add.remote(1, 2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'y'"):
        c.add.remote(1, y=2)
    with pytest.raises(TypeError, match="missing a required argument: 'x'"):
        c.double.remote()
    with pytest.raises(TypeError, match="too many positional arguments"):
        c.kind.remote("a", "b")
    assert ray.get([c.add.remote(1, times=3), c.anything.remote(1, 2, k=3), c.double.remote(4),
                    c.kind.remote("!")], timeout=60) == [13, 3, 8, "Calc!"]
    with pytest.raises(TypeError, match=r"Calc.remote\(\): missing a required argument: 'start'"):
        Calc.remote()
    with pytest.raises(TypeError, match="too many positional arguments"):
        Calc.remote(1, 2, 3)


def test_a_handle_from_get_actor_binds_too(ray):
    creator = Calc.options(name="sig-calc").remote(1)  # held: get_actor's handle does not keep it alive
    found = ray.get_actor("sig-calc")
    with pytest.raises(TypeError, match="missing a required argument: 'x'"):
        found.add.remote()
    assert ray.get(found.add.remote(2), timeout=60) == 3
    ray.kill(creator)


def test_options_keep_the_method_signature(ray):
    c = Calc.remote(0)
    with pytest.raises(TypeError, match="missing a required argument"):
        c.add.options(num_returns=1).remote()


# -------------------------------------------------------------- check_call vs inspect

KINDS = [inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
         inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD]


@st.composite
def signatures(draw: st.DrawFn) -> inspect.Signature:
    """Valid signatures: kinds in order, at most one of each var kind, defaults only after
    the required positionals."""
    params: list[inspect.Parameter] = []
    defaulted = False
    for i, kind in enumerate(sorted(draw(st.lists(st.sampled_from(KINDS), max_size=5)))):
        if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD) and any(
                p.kind == kind for p in params):
            continue
        default = inspect.Parameter.empty
        if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            pass
        elif kind == inspect.Parameter.KEYWORD_ONLY:
            default = 0 if draw(st.booleans()) else inspect.Parameter.empty
        elif defaulted or draw(st.booleans()):
            defaulted, default = True, 0
        params.append(inspect.Parameter(f"p{i}", kind, default=default))
    return inspect.Signature(params)


@given(signatures(), st.integers(0, 5), st.sets(st.sampled_from(["p0", "p1", "p2", "p3", "p4", "zz"]), max_size=3))
def test_check_call_agrees_with_inspect(sig: inspect.Signature, npos: int, names: set[str]) -> None:
    def fn(*a, **k):  # noqa: ANN002, ANN003 - its signature is replaced below
        pass

    fn.__signature__ = sig  # type: ignore[attr-defined]
    args, kwargs = tuple(range(npos)), dict.fromkeys(names, 1)
    try:
        sig.bind(*args, **kwargs)
        expected = None
    except TypeError as exc:
        expected = str(exc)
    try:
        check_call(params_of(fn), args, kwargs, "fn.remote()")
        got = None
    except TypeError as exc:
        got = str(exc)
    assert got == (None if expected is None else f"fn.remote(): {expected}")


def test_a_callable_without_a_signature_is_not_checked():
    assert params_of(object()) is None  # nothing to read a signature from
    check_call(None, (1, 2, 3), {"x": 1}, "x.remote()")  # nothing to check against: no error
