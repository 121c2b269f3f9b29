"""runtime_env for tasks and actors: workers pooled per environment (env_vars seen by a task
and an actor of the env, not by a default-env task), working_dir and py_modules uploaded and
imported, a pip virtualenv built once per node and reused, a failed setup raised as
RuntimeEnvSetupError with pip's output (for a task and an actor), nested tasks inheriting
their parent's env, bad runtime_envs refused at options time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import tray
from tray.exceptions import ActorDiedError, RuntimeEnvSetupError
from tray.runtime_env import RuntimeEnv, RuntimeEnvConfig

TIMEOUT = 120


@pytest.fixture(scope="module")
def ray():
    tray.init(num_cpus=2, runtime_env={"env_vars": {"JOB_LEVEL": "job"}})
    yield tray
    tray.shutdown()


@tray.remote
def getenv(*names):
    return [os.environ.get(n) for n in names]


@tray.remote
class Reader:
    def getenv(self, name):
        return os.environ.get(name)


def test_env_vars_reach_a_task_and_an_actor_of_the_env_only(ray):
    env = {"env_vars": {"RT_FLAVOUR": "mint"}}
    assert ray.get(getenv.options(runtime_env=env).remote("RT_FLAVOUR", "JOB_LEVEL"), timeout=TIMEOUT) == \
        ["mint", "job"]  # the job's env_vars merged under the task's
    actor = Reader.options(runtime_env=env).remote()
    assert ray.get(actor.getenv.remote("RT_FLAVOUR"), timeout=TIMEOUT) == "mint"
    for _ in range(4):  # default-env tasks never land on the env's workers
        assert ray.get(getenv.remote("RT_FLAVOUR", "JOB_LEVEL"), timeout=TIMEOUT) == [None, "job"]
    child = {"env_vars": {"JOB_LEVEL": "task"}}  # the child's value wins
    assert ray.get(getenv.options(runtime_env=child).remote("JOB_LEVEL"), timeout=TIMEOUT) == ["task"]
    ray.kill(actor)


def test_working_dir_is_the_cwd_and_on_the_import_path_with_excludes(ray, tmp_path):
    wd = tmp_path / "wd"
    (wd / "data").mkdir(parents=True)
    (wd / "rt_wd_module.py").write_text("WHERE = 'working_dir'\n")
    (wd / "data" / "skip.txt").write_text("left out\n")
    (wd / "keep.txt").write_text("kept\n")

    @tray.remote
    def look():
        import rt_wd_module

        return rt_wd_module.WHERE, os.getcwd(), os.path.exists("keep.txt"), os.path.exists("data/skip.txt")

    where, cwd, kept, skipped = ray.get(
        look.options(runtime_env={"working_dir": str(wd), "excludes": ["data"]}).remote(), timeout=TIMEOUT)
    assert where == "working_dir" and kept and not skipped
    assert cwd != str(wd) and "runtime_resources" in cwd  # an unpacked copy on the node


def test_py_modules_are_importable(ray, tmp_path):
    pkg = tmp_path / "rt_pymod_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("NAME = 'py_module'\n")

    @tray.remote
    def use():
        import rt_pymod_pkg

        return rt_pymod_pkg.NAME

    assert ray.get(use.options(runtime_env={"py_modules": [str(pkg)]}).remote(), timeout=TIMEOUT) == "py_module"


def test_py_modules_take_an_imported_package_as_ray_does(ray, tmp_path, monkeypatch):
    pkg = tmp_path / "rt_pymod_obj"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("NAME = 'from a module object'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import rt_pymod_obj  # the driver imported it; the workers get its directory

    @tray.remote
    def use():
        import rt_pymod_obj

        return rt_pymod_obj.NAME

    env = {"py_modules": [rt_pymod_obj]}
    monkeypatch.delitem(sys.modules, "rt_pymod_obj")
    assert ray.get(use.options(runtime_env=env).remote(), timeout=TIMEOUT) == "from a module object"


def test_nested_tasks_inherit_their_parents_env(ray):
    @tray.remote
    def parent():
        own = tray.get_runtime_context().runtime_env
        inner = tray.get(getenv.remote("RT_NESTED"))
        override = tray.get(getenv.options(runtime_env={"env_vars": {"RT_NESTED": "child"}}).remote("RT_NESTED"))
        return own["env_vars"]["RT_NESTED"], inner, override

    got = ray.get(parent.options(runtime_env={"env_vars": {"RT_NESTED": "parent"}}).remote(), timeout=TIMEOUT)
    assert got == ("parent", ["parent"], ["child"])
    assert ray.get_runtime_context().runtime_env == {"env_vars": {"JOB_LEVEL": "job"}}
    assert '"JOB_LEVEL"' in ray.get_runtime_context().get_runtime_env_string()


def test_bad_runtime_envs_are_refused_at_options_time(ray):
    with pytest.raises(ValueError, match="env_vars"):
        getenv.options(runtime_env={"env_vars": {"A": 1}})
    with pytest.raises(ValueError, match="conda"):
        Reader.options(runtime_env={"conda": "env"})
    with pytest.raises(ValueError, match="setup_timeout_seconds"):
        tray.remote(runtime_env={"config": {"setup_timeout_seconds": 0}})(lambda: 1)
    with pytest.raises(ValueError, match="conda"):
        RuntimeEnv(conda="x")
    typed = RuntimeEnv(env_vars={"RT_TYPED": "yes"}, config=RuntimeEnvConfig(setup_timeout_seconds=60))
    assert ray.get(getenv.options(runtime_env=typed).remote("RT_TYPED"), timeout=TIMEOUT) == ["yes"]


def build_wheel(where: Path) -> Path:
    """A tiny local package, built offline into a wheel."""
    src = where / "src"
    (src / "rtwheelpkg").mkdir(parents=True)
    (src / "rtwheelpkg" / "__init__.py").write_text("VALUE = 'from the wheel'\n")
    (src / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = '
                                        '"setuptools.build_meta"\n[project]\nname = "rtwheelpkg"\nversion = "0.1"\n')
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(where),
                    str(src)], check=True, capture_output=True, timeout=120)
    return next(where.glob("rtwheelpkg-*.whl"))


def test_pip_installs_into_a_cached_venv_that_a_second_worker_reuses(ray, tmp_path):
    env = {"pip": [str(build_wheel(tmp_path))]}

    @tray.remote
    def venv_value():
        import rtwheelpkg

        return rtwheelpkg.VALUE, sys.prefix, os.getpid()

    @tray.remote
    class Holder:
        def value(self):
            import rtwheelpkg

            return rtwheelpkg.VALUE, sys.prefix, os.getpid()

    holder = Holder.options(runtime_env=env).remote()  # holds its worker
    value, prefix, pid = ray.get(holder.value.remote(), timeout=TIMEOUT)
    assert value == "from the wheel" and "runtime_resources" in prefix
    marker = Path(prefix) / ".ready"
    stamp = marker.stat().st_mtime_ns
    # a second worker, started in the same venv
    value2, prefix2, pid2 = ray.get(venv_value.options(runtime_env=env).remote(), timeout=TIMEOUT)
    assert (value2, prefix2) == (value, prefix) and pid2 != pid
    assert marker.stat().st_mtime_ns == stamp  # reused, not rebuilt
    ray.kill(holder)


def test_a_failing_pip_setup_raises_runtime_env_setup_error_for_a_task_and_an_actor(ray, tmp_path):
    env = {"pip": [str(tmp_path / "rt_missing-0.1-py3-none-any.whl")]}
    with pytest.raises(RuntimeEnvSetupError, match="rt_missing") as info:
        ray.get(getenv.options(runtime_env=env).remote("X"), timeout=TIMEOUT)
    assert "failed" in str(info.value)  # pip's own words come with it
    actor = Reader.options(runtime_env=env).remote()
    with pytest.raises(RuntimeEnvSetupError, match="rt_missing") as info:
        ray.get(actor.getenv.remote("X"), timeout=TIMEOUT)
    assert isinstance(info.value, ActorDiedError)
    assert ray.get(getenv.remote("JOB_LEVEL"), timeout=TIMEOUT) == ["job"]  # the node is fine


def test_a_setup_over_its_timeout_fails_instead_of_hanging(ray):
    with socket.socket() as silent:  # a package index that never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        index = f"http://127.0.0.1:{silent.getsockname()[1]}/simple"
        env = {"pip": [f"--index-url={index}", "rt-never-there"], "config": {"setup_timeout_seconds": 3}}
        with pytest.raises(RuntimeEnvSetupError, match="took over its config.setup_timeout_seconds"):
            ray.get(getenv.options(runtime_env=env).remote("X"), timeout=TIMEOUT)


def test_an_env_whose_workers_cannot_start_fails_instead_of_restarting_them_forever(ray, tmp_path):
    broken = tmp_path / "trio"  # shadows tray's own dependency in the env's workers
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('this env breaks trio')\n")
    with pytest.raises(RuntimeEnvSetupError, match="this env breaks trio"):
        ray.get(getenv.options(runtime_env={"py_modules": [str(broken)]}).remote("X"), timeout=TIMEOUT)
