"""The pure decision modules: restart intensity window, strategies, restart types, deciders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tray.exceptions import RayTaskError
from tray.supervisors._intensity import RestartIntensity
from tray.supervisors._strategy import affected, is_abnormal, resolve_directive, should_restart


def test_intensity_window_is_inclusive_as_in_otp() -> None:
    w = RestartIntensity(1, 5.0)
    assert not w.add(0.0)
    assert w.add(5.0)  # the restart at t=0 is exactly `period` ago: still counts
    w = RestartIntensity(1, 5.0)
    assert not w.add(0.0)
    assert not w.add(5.001)


def test_intensity_zero_trips_on_the_first_restart() -> None:
    assert RestartIntensity(0, 1.0).add(0.0)


@given(st.integers(0, 5), st.floats(0.1, 10), st.lists(st.floats(0, 5), max_size=30))
def test_intensity_matches_a_count_over_the_window(intensity: int, period: float, gaps: list[float]) -> None:
    w = RestartIntensity(intensity, period)
    now, times = 0.0, []
    for gap in gaps:
        now += gap
        times.append(now)
        in_window = [t for t in times if now - t <= period]
        assert w.add(now) == (len(in_window) > intensity)


ORDER = ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("strategy", "failed", "expected"),
    [
        ("one_for_one", "b", ["b"]),
        ("simple_one_for_one", "c", ["c"]),
        ("one_for_all", "c", ORDER),
        ("rest_for_one", "b", ["b", "c", "d"]),
        ("rest_for_one", "d", ["d"]),
        ("rest_for_one", "a", ORDER),
    ],
)
def test_affected_children(strategy: str, failed: str, expected: list[str]) -> None:
    assert affected(strategy, ORDER, failed) == expected


@pytest.mark.parametrize(
    ("restart", "reason", "expected"),
    [
        ("permanent", "normal", True),
        ("permanent", ValueError(), True),
        ("transient", "normal", False),
        ("transient", "shutdown", False),
        ("transient", "killed", True),
        ("transient", ValueError(), True),
        ("temporary", ValueError(), False),
        ("temporary", "killed", False),
    ],
)
def test_restart_types(restart: str, reason: object, expected: bool) -> None:
    assert should_restart(restart, reason) is expected


def test_abnormal_reasons() -> None:
    assert not is_abnormal("normal") and not is_abnormal("shutdown")
    assert is_abnormal("killed") and is_abnormal("noproc") and is_abnormal(KeyError())


class AppError(Exception):
    pass


class DbError(AppError):
    pass


def test_decider_picks_the_most_specific_class() -> None:
    decider = {Exception: "escalate", AppError: "stop", DbError: "resume"}
    assert resolve_directive(decider, DbError()) == "resume"
    assert resolve_directive(decider, AppError()) == "stop"
    assert resolve_directive(decider, KeyError()) == "escalate"
    assert resolve_directive({AppError: "stop"}, KeyError()) == "restart"  # unmatched: default
    assert resolve_directive(None, KeyError(), default="resume") == "resume"


def test_decider_keys_may_be_names_and_match_wrapped_task_errors() -> None:
    decider = {"ValueError": "resume", f"{__name__}:DbError": "stop"}
    assert resolve_directive(decider, ValueError()) == "resume"
    assert resolve_directive(decider, DbError()) == "stop"
    # a remote error re-raised in an actor is still its original class
    assert resolve_directive(decider, RayTaskError.from_exception(ValueError("x"), "there")) == "resume"


def test_callable_decider() -> None:
    assert resolve_directive(lambda e: "stop" if isinstance(e, KeyError) else "resume", KeyError()) == "stop"
