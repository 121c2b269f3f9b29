"""Search spaces and the variant generator (pure)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tray import tune
from tray.tune.search import variant_generator as vg


def test_grid_times_num_samples_and_order() -> None:
    space = {"a": tune.grid_search([1, 2]), "b": {"c": tune.grid_search(["x", "y", "z"])}, "d": tune.uniform(0, 1)}
    variants = list(vg.generate_variants(space, num_samples=2, rng=random.Random(0)))
    assert len(variants) == 12
    firsts = [(c["a"], c["b"]["c"]) for _, c in variants[:6]]
    assert firsts == [(1, "x"), (2, "x"), (1, "y"), (2, "y"), (1, "z"), (2, "z")]  # the first key varies fastest
    assert all(0 <= c["d"] <= 1 for _, c in variants)
    assert len({c["d"] for _, c in variants}) == 12  # sampled afresh for each variant


def test_sample_from_sees_the_resolved_config() -> None:
    space = {"a": tune.grid_search([1, 2]), "b": tune.sample_from(lambda spec: spec.config.a * 10),
             "c": tune.sample_from(lambda spec: spec.config.b + 1)}
    assert [(c["b"], c["c"]) for _, c in vg.generate_variants(space)] == [(10, 11), (20, 21)]


def test_unknown_search_space_objects_are_named() -> None:
    class Foreign:
        def get_sampler(self) -> None: ...

    with pytest.raises(ValueError, match=r"config\['opt'\]\['lr'\].*search-space object"):
        vg.parse_space({"opt": {"lr": Foreign()}})
    with pytest.raises(ValueError, match="non-empty list"):
        vg.parse_space({"x": {"grid_search": []}})
    with pytest.raises(ValueError, match="lower < upper"):
        tune.uniform(1, 1)
    with pytest.raises(ValueError, match="0 < lower"):
        tune.loguniform(0, 1)


@settings(max_examples=60, deadline=None)
@given(lo=st.integers(-50, 50), width=st.integers(1, 100), q=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_integer_domains_stay_in_bounds(lo: int, width: int, q: int, seed: int) -> None:
    rng = random.Random(seed)
    hi = lo + width
    assert lo <= tune.randint(lo, hi).sample(random_state=rng) < hi
    v = tune.qrandint(lo, hi, q).sample(random_state=rng)
    assert v % q == 0 and isinstance(v, int)
    if lo > 0:
        assert lo <= tune.lograndint(lo, hi).sample(random_state=rng) < hi


@settings(max_examples=60, deadline=None)
@given(lo=st.floats(1e-4, 10), width=st.floats(1e-3, 100), seed=st.integers(0, 2**16))
def test_float_domains_stay_in_bounds(lo: float, width: float, seed: int) -> None:
    rng = random.Random(seed)
    hi = lo + width
    assert lo <= tune.uniform(lo, hi).sample(random_state=rng) <= hi
    assert lo * (1 - 1e-9) <= tune.loguniform(lo, hi).sample(random_state=rng) <= hi * (1 + 1e-9)
    v = tune.quniform(0, 1, 0.1).sample(random_state=rng)
    assert abs(v * 10 - round(v * 10)) < 1e-9
    assert tune.choice(["a", "b"]).sample(random_state=rng) in ("a", "b")
    assert isinstance(tune.randn(0, 1).sample(random_state=rng), float)


def test_format_vars_names_the_varied_keys() -> None:
    assert vg.format_vars({("lr",): 0.001, ("net", "layers"): 3}) == "lr=0.0010,layers=3"


def test_constant_grid_search_and_points_to_evaluate() -> None:
    from tray.tune.search import BasicVariantGenerator

    gen = BasicVariantGenerator(constant_grid_search=True, random_state=1)
    gen.setup({"a": tune.grid_search([1, 2]), "b": tune.uniform(0, 1)}, num_samples=2)
    configs = [gen.next_trial(str(i))[0] for i in range(4)]
    assert configs[0]["b"] == configs[1]["b"] != configs[2]["b"] == configs[3]["b"]
    assert gen.is_finished() and gen.next_trial("x") is None
    gen = BasicVariantGenerator(points_to_evaluate=[{"b": 0.5}], random_state=1)
    gen.setup({"a": 7, "b": tune.uniform(0, 1)}, num_samples=1)
    assert gen.next_trial("0")[0] == {"a": 7, "b": 0.5} and gen.total_samples == 2
