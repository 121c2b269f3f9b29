"""The pure parts of runtime_env: merging (Ray's rule), identity, checking, Ray's typed form."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tray.cluster import _runtime_env as renv
from tray.runtime_env import RuntimeEnv, RuntimeEnvConfig

names = st.text("ABCDEFG", min_size=1, max_size=3)
env_vars = st.dictionaries(names, st.text("xyz", max_size=3), max_size=4)
envs = st.fixed_dictionaries({}, optional={
    "env_vars": env_vars,
    "working_dir": st.sampled_from(["kv://pkg_a.zip", "kv://pkg_b.zip"]),
    "py_modules": st.lists(st.sampled_from(["kv://pkg_m.zip", "kv://pkg_n.zip"]), max_size=2),
    "pip": st.lists(st.sampled_from(["a==1", "b"]), max_size=2),
})


@given(envs, envs)
def test_a_childs_fields_replace_its_parents_and_env_vars_merge(parent, child):
    merged = renv.merge(parent, child)
    for key in set(parent) | set(child):
        if key == "env_vars" and "env_vars" in child and "env_vars" in parent:
            assert merged["env_vars"] == {**parent["env_vars"], **child["env_vars"]}
        elif key in child:
            assert merged[key] == child[key]
        else:
            assert merged[key] == parent[key]
    assert set(merged) == set(parent) | set(child)
    assert renv.merge(parent, {}) == parent and renv.merge({}, child) == child
    assert renv.validate(merged) == merged


@given(envs)
def test_an_envs_key_is_its_content(env):
    shuffled = dict(reversed(list(env.items())))
    assert renv.key_of(env) == renv.key_of(shuffled)
    assert renv.key_of({**env, "env_vars": {**env.get("env_vars", {}), "NEW": "1"}}) != renv.key_of(env)


@pytest.mark.parametrize("bad, field", [
    ({"env_vars": {"A": 1}}, "env_vars"),
    ({"working_dir": 3}, "working_dir"),
    ({"py_modules": "x"}, "py_modules"),
    ({"py_modules": [3]}, "paths or imported packages"),
    ({"py_modules": [os]}, "is not a package of one directory"),
    ({"pip": 3}, "pip"),
    ({"pip": ["a"], "uv": ["b"]}, "not both"),
    ({"excludes": "x"}, "excludes"),
    ({"config": {"setup_timeout_seconds": 0}}, "setup_timeout_seconds"),
    ({"config": {"log_files": ["a"]}}, "log_files"),
    ({"conda": "env"}, "conda"),
    ({"pip": {"packages": ["a"], "pip_version": "==22"}}, "pip_version"),
    ({"pip": {"packages": ["a"], "pip_check": True}}, "pip_check=True"),
    ({"pip": {"packages": ["a"], "pip_install_options": "--no-deps"}}, "pip_install_options"),
    ([], "must be a dict"),
])
def test_a_bad_runtime_env_names_its_field(bad, field):
    with pytest.raises(ValueError, match=field):
        renv.validate(bad)


def test_rays_pip_dict_form_is_its_install_arguments():
    spec = {"packages": ["a==1", "b"], "pip_install_options": ["--no-deps"], "pip_check": False}
    assert renv.validate({"pip": spec})["pip"] == ["--no-deps", "a==1", "b"]


def test_rays_typed_form_round_trips():
    env = RuntimeEnv(env_vars={"A": "1"}, pip=["x"], config=RuntimeEnvConfig(setup_timeout_seconds=5))
    assert env == {"env_vars": {"A": "1"}, "pip": ["x"],
                   "config": {"setup_timeout_seconds": 5, "eager_install": True, "log_files": []}}
    assert RuntimeEnv.deserialize(env.serialize()) == env and env.has_pip() and env.env_vars() == {"A": "1"}
    with pytest.raises(ValueError, match="container"):
        RuntimeEnv(container={"image": "x"})
