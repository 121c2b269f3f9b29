"""The pure deciders: routing choice, route matching, the autoscaling policy, the replica plan."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tray.serve import _autoscale, _routing, _targets
from tray.serve.config import AutoscalingConfig

inflight_maps = st.dictionaries(st.text("abcdef", min_size=1, max_size=3), st.integers(0, 10), max_size=8)


@given(inflight_maps, st.integers(1, 10), st.integers(0, 2**32 - 1))
def test_choose_respects_capacity_and_prefers_shorter_queue(inflight, max_ongoing, seed) -> None:
    rid = _routing.choose(inflight, max_ongoing, random.Random(seed))
    free = [r for r, n in inflight.items() if n < max_ongoing]
    if not free:
        assert rid is None
        return
    assert rid in free
    # power of two choices takes the lesser of two distinct samples: never a replica busier than
    # every other free one
    if len(free) >= 2:
        assert any(inflight[r] >= inflight[rid] for r in free if r != rid)


@given(inflight_maps, st.integers(1, 10))
def test_choose_prefers_the_models_home_when_it_has_room(inflight, max_ongoing) -> None:
    for home in inflight:
        rid = _routing.choose(inflight, max_ongoing, random.Random(0), prefer=(home,))
        if inflight[home] < max_ongoing:
            assert rid == home


@given(st.integers(-1, 5), st.integers(0, 10))
def test_may_queue(max_queued, queued) -> None:
    assert _routing.may_queue(queued, max_queued) == (max_queued == -1 or queued < max_queued)


def test_match_route_longest_prefix_on_segment_boundaries() -> None:
    routes = {"/": "root", "/a": "a", "/a/b": "ab"}
    assert _routing.match_route(routes, "/a/b/c") == "/a/b"
    assert _routing.match_route(routes, "/a/bc") == "/a"
    assert _routing.match_route(routes, "/ab") == "/"
    assert _routing.match_route({"/a": "a"}, "/ab") is None


configs = st.builds(
    lambda lo, span, target, up, down: AutoscalingConfig(min_replicas=lo, max_replicas=lo + span,
                                                        target_ongoing_requests=target, upscale_delay_s=up,
                                                        downscale_delay_s=down),
    st.integers(0, 3), st.integers(1, 5), st.floats(0.5, 5), st.floats(0, 2), st.floats(0, 2),
)


@given(configs, st.floats(0, 100), st.integers(0, 10))
def test_desired_replicas_within_bounds(cfg, load, running) -> None:
    d = _autoscale.desired_replicas(cfg, load, running)
    assert cfg.min_replicas <= d <= cfg.max_replicas or (running == 0 and d == 1 and load > 0)
    if running > 0 and load >= cfg.target_ongoing_requests * running * 1.01:
        assert d >= min(running, cfg.max_replicas)


@settings(max_examples=200)
@given(configs, st.lists(st.floats(0, 50), min_size=1, max_size=60), st.integers(1, 4))
def test_decide_moves_only_after_its_delay(cfg, loads, start) -> None:
    """A target only moves after more than delay/tick consecutive ticks wanting that direction,
    and always stays within the bounds."""
    tick = 0.1
    target = max(cfg.min_replicas, min(cfg.max_replicas, start))
    counter = 0
    streak_up = streak_down = 0
    for load in loads:
        want = _autoscale.desired_replicas(cfg, load, target)
        streak_up = streak_up + 1 if want > target else 0
        streak_down = streak_down + 1 if want < target else 0
        d = _autoscale.decide(cfg, load, target, target, counter, tick)
        assert cfg.min_replicas <= d.target <= cfg.max_replicas
        if target == 0:
            # from zero replicas a waiting request scales up at once (Ray's rule), to one replica
            assert d.target == (max(cfg.min_replicas, 1) if load > 0 else cfg.min_replicas)
            streak_up = 0
        elif d.target > target:
            assert streak_up > int(cfg.upscale_delay_s / tick)
            streak_up = 0
        elif d.target < target:
            assert streak_down > int(cfg.downscale_delay_s / tick)
            streak_down = 0
        target, counter = d.target, d.counter


def test_scale_from_zero_on_first_request() -> None:
    cfg = AutoscalingConfig(min_replicas=0, max_replicas=4, upscale_delay_s=100)
    assert _autoscale.decide(cfg, 3, 0, 0, 0, 0.1).target == 1
    assert _autoscale.decide(cfg, 0, 0, 0, 0, 0.1).target == 0


def test_average_load_windows_each_handle() -> None:
    samples = {"h1": [(0.0, 10.0), (9.0, 2.0), (10.0, 4.0)], "h2": [(1.0, 7.0)]}
    # h1: mean of the samples in [8, 10] = 3; h2: only an old sample, its latest value counts
    assert _autoscale.average_load(samples, now=10.0, look_back_s=2.0) == 3.0 + 7.0


facts = st.dictionaries(
    st.text("0123456789", min_size=1, max_size=3),
    st.builds(_targets.ReplicaFact, st.sampled_from([_targets.STARTING, _targets.RUNNING, _targets.STOPPING]),
              st.sampled_from(["v1", "v2"]), st.integers(0, 100)),
    max_size=8,
)


@given(st.integers(0, 6), facts, st.booleans())
def test_plan_converges_towards_target(target, replicas, failed) -> None:
    plan = _targets.plan(target, "v2", replicas, failed)
    live_new = [r for r, f in replicas.items() if f.state != _targets.STOPPING and f.version == "v2"]
    assert set(plan.stop) <= {r for r, f in replicas.items() if f.state != _targets.STOPPING}
    assert len(set(plan.stop)) == len(plan.stop)
    kept_new = len([r for r in live_new if r not in plan.stop])
    if failed:
        assert plan.start == 0
    else:
        assert kept_new + plan.start == target or (kept_new > target and plan.start == 0)
        assert kept_new + plan.start == target  # surplus new replicas are stopped
    # an update never takes the serving count below the target while new replicas start
    running_old = [r for r, f in replicas.items() if f.state == _targets.RUNNING and f.version != "v2"]
    running_new = [r for r, f in replicas.items() if f.state == _targets.RUNNING and f.version == "v2"]
    serving_after = len([r for r in running_old + running_new if r not in plan.stop])
    if target > 0:
        assert serving_after >= min(target, len(running_old) + len(running_new))


def test_status_rules() -> None:
    r = _targets.ReplicaFact
    assert _targets.status(1, "v", {"a": r("RUNNING", "v", 0)}, False, False, None) == "HEALTHY"
    assert _targets.status(2, "v", {"a": r("RUNNING", "v", 0)}, False, False, None) == "UPDATING"
    assert _targets.status(2, "v", {"a": r("RUNNING", "v", 0)}, False, True, None) == "UNHEALTHY"
    assert _targets.status(2, "v", {"a": r("RUNNING", "v", 0)}, False, True, "up") == "UPSCALING"
    assert _targets.status(1, "v", {}, True, False, None) == "DEPLOY_FAILED"
    assert _targets.app_status({"a": "HEALTHY", "b": "UPSCALING"}, False) == "RUNNING"
    assert _targets.app_status({"a": "HEALTHY", "b": "DEPLOY_FAILED"}, False) == "DEPLOY_FAILED"
    assert _targets.app_status({"a": "UPDATING"}, False) == "DEPLOYING"
    assert _targets.app_status({"a": "HEALTHY"}, True) == "DELETING"
