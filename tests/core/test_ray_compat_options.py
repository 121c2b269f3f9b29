"""Options given to ``@remote(...)`` and ``.options(...)`` fail as in Ray: a value of a type
Ray does not take is a TypeError, a bad value or an unknown option a ValueError, each naming
the option; None means the default. Also: ``@remote()`` with empty parentheses, the actor
class's own attributes, and functions that capture a huge object (Ray's size limits)."""

from __future__ import annotations

import pytest

import tray
import tray.core._remote as remote_module


def plain(x=1):
    return x


class Plain:
    """The plain class's docstring."""

    def get(self):
        return 1


FUNCTION_CASES = [
    ({"num_cpus": "2"}, TypeError), ({"num_gpus": "1"}, TypeError), ({"memory": "1"}, TypeError),
    ({"num_returns": 1.5}, TypeError), ({"max_retries": 1.5}, TypeError), ({"resources": [1]}, TypeError),
    ({"name": 5}, TypeError), ({"retry_exceptions": 1}, TypeError), ({"max_calls": 1.5}, TypeError),
    ({"num_cpus": -1}, ValueError), ({"memory": -1}, ValueError), ({"num_returns": -1}, ValueError),
    ({"max_retries": -2}, ValueError), ({"resources": {"CPU": 1}}, ValueError), ({"resources": {"GPU": 1}}, ValueError),
    ({"resources": {"x": -1}}, ValueError), ({"lifetime": "detached"}, ValueError), ({"foo": 1}, ValueError),
    ({"max_concurrency": 2}, ValueError),
]
ACTOR_CASES = [
    ({"num_cpus": "2"}, TypeError), ({"max_restarts": 1.5}, TypeError), ({"max_concurrency": 1.5}, TypeError),
    ({"lifetime": 1}, TypeError), ({"namespace": 1}, TypeError), ({"get_if_exists": 1}, TypeError),
    ({"max_pending_calls": 1.5}, TypeError), ({"name": 5}, TypeError),
    ({"lifetime": "forever"}, ValueError), ({"max_concurrency": -1}, ValueError),
    ({"max_task_retries": -2}, ValueError), ({"max_restarts": -2}, ValueError),
    ({"name": ""}, ValueError), ({"namespace": ""}, ValueError),
    ({"resources": {"CPU": 1}}, ValueError), ({"num_returns": 1}, ValueError), ({"foo": 1}, ValueError),
]


@pytest.mark.parametrize(("options", "error"), FUNCTION_CASES, ids=str)
def test_function_options_fail_as_in_ray(options, error):
    (key,) = options
    with pytest.raises(error, match=key):
        tray.remote(plain).options(**options)
    with pytest.raises(error, match=key):
        tray.remote(**options)(plain)


@pytest.mark.parametrize(("options", "error"), ACTOR_CASES, ids=str)
def test_actor_options_fail_as_in_ray(options, error):
    (key,) = options
    with pytest.raises(error, match=key):
        tray.remote(Plain).options(**options)
    with pytest.raises(error, match=key):
        tray.remote(**options)(Plain)


def test_method_options_are_checked():
    with pytest.raises(TypeError, match="num_returns"):
        tray.method(num_returns=1.5)
    with pytest.raises(ValueError, match="foo"):
        tray.method(foo=1)


def test_none_means_the_default_and_empty_task_names_are_taken(ray):
    f = tray.remote(num_returns=2)(lambda: (1, 2))
    # None resets the decorator's num_returns=2 to the default, 1: one ref to the whole tuple
    assert ray.get(f.options(num_returns=None, max_retries=None, name="").remote(), timeout=60) == (1, 2)
    assert ray.get(f.options(max_retries=None).remote(), timeout=60) == [1, 2]
    A = tray.remote(max_concurrency=0)(Plain)  # Ray's 0: the default concurrency
    a = A.options(max_restarts=None, max_task_retries=None).remote()
    assert ray.get(a.get.options(num_returns=None).remote(), timeout=60) == 1


def test_remote_with_empty_parentheses_fails_as_in_ray():
    for target in (plain, Plain):
        with pytest.raises(AssertionError, match="no arguments and no parentheses"):  # Ray's exception type
            tray.remote()(target)
        with pytest.raises(TypeError):  # and what it is
            tray.remote()(target)
    with pytest.raises(TypeError, match="only keyword options"):
        tray.remote(plain, num_cpus=1)


def test_actor_class_shows_the_user_class():
    A = tray.remote(Plain)
    assert A.__module__ == Plain.__module__ and A.__doc__ == Plain.__doc__
    assert A.options(num_cpus=1).__doc__ == Plain.__doc__


def test_a_function_capturing_a_huge_object_is_warned_about_then_refused(ray, monkeypatch):
    monkeypatch.setattr(remote_module, "FUNCTION_SIZE_WARN_THRESHOLD", 100_000)
    monkeypatch.setattr(remote_module, "FUNCTION_SIZE_ERROR_THRESHOLD", 1_000_000)
    medium, huge = b"m" * 300_000, b"h" * 2_000_000

    @tray.remote
    def uses_medium():
        return len(medium)

    @tray.remote
    def uses_huge():
        return len(huge)

    @tray.remote
    class HoldsHuge:
        def size(self):
            return len(huge)

    with pytest.warns(UserWarning, match="uses_medium' is very large"):
        ref = uses_medium.remote()
    assert ray.get(ref, timeout=60) == 300_000
    with pytest.raises(ValueError, match="too large .*FUNCTION_SIZE_ERROR_THRESHOLD"):
        uses_huge.remote()
    with pytest.raises(ValueError, match="actor class 'HoldsHuge' is too large"):
        HoldsHuge.remote()
