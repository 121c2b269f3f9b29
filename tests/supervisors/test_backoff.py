"""Backoff delays as numbers: bounded by min/max, growing, jitter within range, reset after reset_after."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tray.supervisors import Backoff, ConfigError
from tray.supervisors._backoff import BackoffState

backoffs = st.builds(
    lambda lo, span, jitter, factor: Backoff(lo, lo + span, jitter, factor=factor),
    st.floats(0.001, 10),
    st.floats(0, 100),
    st.floats(0, 1),
    st.floats(1, 4),
)


@given(backoffs, st.integers(0, 2000), st.floats(0, 1, exclude_max=True))
def test_delay_is_bounded_by_min_and_max(b: Backoff, attempt: int, u: float) -> None:
    assert b.min <= b.delay(attempt, u) <= b.max


@given(backoffs, st.integers(0, 200))
def test_base_grows_until_it_reaches_max(b: Backoff, attempt: int) -> None:
    assert b.base(attempt + 1) >= b.base(attempt)
    if b.base(attempt) < b.max:
        assert b.base(attempt) == pytest.approx(b.min * b.factor**attempt)


@given(backoffs, st.integers(0, 200), st.floats(0, 1, exclude_max=True))
def test_jitter_stays_within_its_fraction(b: Backoff, attempt: int, u: float) -> None:
    base = b.base(attempt)
    d = b.delay(attempt, u)
    assert base <= d <= min(b.max, base * (1 + b.jitter)) + 1e-12


def test_exact_sequence_without_jitter() -> None:
    b = Backoff(0.1, 1.0)
    assert [b.delay(n, 0.5) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_huge_attempt_is_capped_not_overflowing() -> None:
    b = Backoff(1.0, 30.0, factor=10.0)
    assert b.delay(10_000, 0.0) == 30.0


def test_state_grows_per_consecutive_failure_and_resets_after_quiet_time() -> None:
    s = BackoffState(Backoff(1.0, 8.0, reset_after=10.0), random.Random(7))
    now, delays = 0.0, []
    s.started(now)
    for _ in range(5):  # crash 1 s after each (re)start
        now += 1.0
        delays.append(s.next_delay(now))
        now += delays[-1]
        s.started(now)
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert s.next_delay(now + 9.999) == 8.0  # up for less than reset_after: still backing off
    s.started(100.0)
    assert s.next_delay(110.0) == 1.0  # up for exactly reset_after: a first failure again
    s.started(111.0)
    assert s.next_delay(112.0) == 2.0


def test_state_jitter_is_drawn_from_the_given_rng() -> None:
    b = Backoff(1.0, 100.0, jitter=0.5)
    a = BackoffState(b, random.Random(3))
    c = BackoffState(b, random.Random(3))
    da = [a.next_delay(0.0) for _ in range(5)]
    assert da == [c.next_delay(0.0) for _ in range(5)]
    for n, d in enumerate(da):
        assert 2**n <= d <= 2**n * 1.5


def test_reset_after_defaults_to_max() -> None:
    assert Backoff(0.5, 7.0).reset_after == 7.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min": -1, "max": 1}, "backoff.min"),
        ({"min": 2, "max": 1}, "backoff.max"),
        ({"min": 1, "max": 2, "jitter": "x"}, "backoff.jitter"),
        ({"min": 1, "max": 2, "factor": 0.5}, "backoff.factor"),
        ({"min": 1, "max": 2, "reset_after": -3}, "backoff.reset_after"),
    ],
)
def test_invalid_backoff_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        Backoff(**kwargs)
    assert e.value.field == field
    assert field in str(e.value)


def test_backoff_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Backoff(1, 2).min = 3  # type: ignore[misc]
