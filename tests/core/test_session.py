"""init/shutdown, the node's views, awaiting refs, and driver-side output — each in a fresh process."""

import subprocess
import sys
import textwrap

import pytest


def run_script(code, timeout=60):
    cmd = [sys.executable, "-c", textwrap.dedent(code)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_init_shutdown_and_auto_init():
    out = run_script("""
        import time
        import tray as ray
        assert not ray.is_initialized()
        start = time.monotonic()
        ctx = ray.init(num_cpus=2, resources={"disk": 3})
        assert time.monotonic() - start < 1.0, "init must be near-instant"
        assert ray.is_initialized()
        try:
            ray.init()
        except RuntimeError as e:
            assert "already" in str(e)
        else:
            raise AssertionError("a second init must fail")
        ray.init(ignore_reinit_error=True)
        total = ray.cluster_resources()
        assert total["CPU"] == 2 and total["disk"] == 3
        assert ray.available_resources()["CPU"] == 2
        (node,) = ray.nodes()
        assert node["Alive"] and node["Resources"]["CPU"] == 2
        rc = ray.get_runtime_context()
        assert rc.get_job_id() and rc.get_node_id() and rc.namespace

        @ray.remote
        def where():
            c = ray.get_runtime_context()
            return c.get_node_id(), c.get_task_id(), c.get_job_id()

        node_id, task_id, job_id = ray.get(where.remote())
        assert node_id == rc.get_node_id() and task_id and job_id == rc.get_job_id()
        ref = where.remote()

        @ray.remote
        class Box:
            def get(self):
                return 1

        box = Box.remote()
        assert ray.get(box.get.remote()) == 1
        ray.shutdown()
        try:
            box.get.remote()
        except RuntimeError as e:
            assert "shut down" in str(e)
        else:
            raise AssertionError("a handle of a finished session must not be usable")
        assert not ray.is_initialized()
        try:
            ray.get(ref)
        except RuntimeError as e:
            assert "shut down" in str(e)
        else:
            raise AssertionError("a ref of a finished session must not be usable")
        # .remote() before init starts tray, as Ray does
        assert ray.get(where.remote())[2]
        ray.shutdown()
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_refs_are_awaitable_from_trio_and_asyncio():
    run_script("""
        import asyncio, trio
        import tray

        @tray.remote
        def double(x):
            return 2 * x

        async def with_trio():
            return await double.remote(4)

        async def with_asyncio():
            return await double.remote(5), await double.remote(6).as_future()

        assert trio.run(with_trio) == 8
        assert asyncio.run(with_asyncio()) == (10, 12)
        tray.shutdown()
    """)


def test_prints_reach_the_driver_with_their_origin():
    out = run_script("""
        import tray

        @tray.remote
        def shout(x):
            print("hello from", x)
            return x

        @tray.remote
        class Speaker:
            def say(self):
                print("actor speaking")

        tray.init(num_cpus=1)
        tray.get(shout.remote(7))
        s = Speaker.remote()
        tray.get(s.say.remote())
        tray.shutdown()
    """)
    assert "(shout pid=" in out and ") hello from 7" in out
    assert "(Speaker pid=" in out and "actor speaking" in out


def test_log_to_driver_false_keeps_worker_output_away():
    out = run_script("""
        import tray
        tray.init(num_cpus=1, log_to_driver=False)

        @tray.remote
        def shout():
            print("should not be seen")

        tray.get(shout.remote())
        tray.shutdown()
    """)
    assert "should not be seen" not in out


def test_no_worker_outlives_a_driver_killed_hard():
    out = run_script("""
        import os, signal, subprocess, sys, time, textwrap
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent('''
            import os, tray
            @tray.remote
            def pid():
                return os.getpid()
            print(tray.nodes()[0]["Address"], *set(tray.get([pid.remote() for _ in range(4)])), flush=True)
            import time; time.sleep(60)
        ''')], stdout=subprocess.PIPE, text=True)
        address, *pids = child.stdout.readline().split()
        pids = [int(p) for p in pids]
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 10
        alive = pids
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [p for p in pids
                     if os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().split()[2]]
        print("alive", alive)
        # a driver killed with SIGKILL cannot remove its session folder: that is `tray stop`'s job
        import shutil
        shutil.rmtree(os.path.dirname(address.removeprefix("unix://")))
    """)
    assert out.strip() == "alive []"


@pytest.mark.parametrize(
    "bad", ["tray.init(resources={'CPU': 4})", "tray.get([1])", "tray.wait([tray.put(1)], num_returns=2)"]
)
def test_bad_input_is_a_clear_error(bad):
    run_script(f"""
        import tray
        try:
            {bad}
        except (ValueError, TypeError) as e:
            print("refused:", e)
        else:
            raise AssertionError("accepted")
        finally:
            tray.shutdown()
    """)
