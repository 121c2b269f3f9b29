"""Ray's ``ray.util.state.list_logs`` and ``get_log`` on a real local node: a worker's files
listed by group, and a log found by its file name, by the actor or task that ran there, or by
the worker's pid; tail, the err stream, follow, and what is refused."""

from __future__ import annotations

import os
import threading

import pytest

import tray
from tray.testing import wait_for_condition
from tray.util.state import get_log, list_logs


@tray.remote
class Talker:
    def say(self, text: str) -> int:
        print(text, flush=True)
        return os.getpid()

    def warn(self, text: str) -> None:
        import sys

        print(text, file=sys.stderr, flush=True)


@tray.remote
def shout(text: str) -> int:
    print(text, flush=True)
    return os.getpid()


def _text(**kwargs) -> str:
    return "".join(get_log(**kwargs))


def test_list_logs_groups_the_workers_files(ray):
    pid = ray.get(shout.remote("listed"), timeout=60)
    logs = list_logs()
    assert any(name.endswith(f"-{pid}.out") for name in logs["worker_out"])
    assert any(name.endswith(f"-{pid}.err") for name in logs["worker_err"])
    node = ray.get_runtime_context().get_node_id()
    assert list_logs(node_id=node) == logs
    assert list_logs(glob_filter="*.err") == {"worker_err": logs["worker_err"]}
    assert list_logs(node_ip=tray.util.get_node_ip_address()) == logs


def test_get_log_by_actor_task_pid_and_file(ray):
    talker = Talker.remote()
    pid = ray.get(talker.say.remote("line one"), timeout=60)
    ray.get(talker.say.remote("line two"), timeout=60)
    ray.get(talker.warn.remote("to stderr"), timeout=60)
    actor_id = talker._actor_id
    wait_for_condition(lambda: "line two" in _text(actor_id=actor_id), timeout=30)
    by_actor = _text(actor_id=actor_id)
    assert by_actor.index("line one") < by_actor.index("line two")
    assert _text(pid=pid) == by_actor
    assert "to stderr" in _text(actor_id=actor_id, suffix="err")
    assert "line two" in _text(actor_id=actor_id, tail=1) and "line one" not in _text(actor_id=actor_id, tail=1)
    name = next(n for n in list_logs()["worker_out"] if n.endswith(f"-{pid}.out"))
    assert _text(filename=name) == by_actor

    ref = shout.remote("from a task")
    ray.get(ref, timeout=60)
    wait_for_condition(lambda: "from a task" in _text(task_id=ref.hex()), timeout=30)
    ray.kill(talker)


def test_follow_yields_what_the_log_gets(ray):
    talker = Talker.remote()
    ray.get(talker.say.remote("before"), timeout=60)
    stream = get_log(actor_id=talker._actor_id, follow=True, _interval=0.05)
    seen = next(stream)
    assert "before" in seen
    threading.Timer(0.2, lambda: talker.say.remote("after")).start()
    while "after" not in seen:
        seen += next(stream)
    stream.close()
    ray.kill(talker)


def test_bad_asks_are_refused_naming_why(ray):
    with pytest.raises(ValueError, match="needs a filename, actor_id, task_id or pid"):
        _text()
    with pytest.raises(ValueError, match="no actor"):
        _text(actor_id="ffff")
    with pytest.raises(ValueError, match="no log file"):
        _text(filename="nope.out")
    with pytest.raises(ValueError, match="suffix"):
        _text(pid=1, suffix="log")
    with pytest.raises(ValueError, match="get_job_logs"):
        _text(submission_id="raysubmit_1")
