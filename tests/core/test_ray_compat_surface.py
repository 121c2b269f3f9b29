"""Ray behaviours found by running Ray's own Core test files against tray (issue 22), each
checked here from Ray's documented behaviour: what ``init()`` returns (Ray's RayContext),
state rows read as attributes, tasks of one shape starting in submission order, the
runtime context's deprecated ID properties and an unnamed actor's name, ``get_if_exists``
needing a name, and the placement-group fit error naming the class."""

import os
import time
import warnings

import pytest

import tray
from tray.util.placement_group import placement_group, remove_placement_group
from tray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
from tray.util.state import list_tasks


@pytest.fixture
def one_cpu():
    yield tray.init(num_cpus=1, include_dashboard=False)
    tray.shutdown()


def test_init_returns_rays_context(one_cpu):
    ctx = one_cpu
    assert ctx["address"] == ctx.address_info["address"] == ctx.address_info["gcs_address"]
    assert ctx.address_info["node_ip_address"] == "127.0.0.1"
    assert ctx.dashboard_url is None and ctx.address_info["webui_url"] is None  # no dashboard asked
    assert ctx.python_version.count(".") == 2


def test_init_context_manager_shuts_down():
    with tray.init(num_cpus=1, include_dashboard=False) as ctx:
        assert tray.is_initialized() and ctx["namespace"]
    assert not tray.is_initialized()


def test_dashboard_url_attribute_has_no_scheme():
    from tray.core._process import InitContext

    ctx = InitContext(address="unix:///x/node.sock", dashboard_url="http://127.0.0.1:8265")
    assert ctx.dashboard_url == ctx.address_info["webui_url"] == "127.0.0.1:8265"
    assert ctx["dashboard_url"] == "http://127.0.0.1:8265"  # tray's own key keeps its scheme


@tray.remote
def started(delay=0.0):
    now = time.time()
    time.sleep(delay)
    return now


def test_tasks_of_one_shape_start_in_submission_order(one_cpu):
    tray.get(started.remote(), timeout=60)  # a worker up and leased
    for _ in range(12):  # one CPU: the first submitted runs first, every time
        first, second = started.remote(0.01), started.remote()
        assert tray.get(first, timeout=60) < tray.get(second, timeout=60)


def test_state_rows_read_as_attributes(one_cpu):
    tray.get(started.options(name="named_task").remote(), timeout=60)
    deadline = time.monotonic() + 30
    while True:
        rows = list_tasks(filters=[("name", "=", "named_task")])
        if rows and rows[0].state == "FINISHED" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    row = rows[0]
    assert row.task_id == row["task_id"] and row.asdict()["name"] == "named_task"
    with pytest.raises(AttributeError, match="no field"):
        row.no_such_field  # noqa: B018


@tray.remote
class Named:
    def name(self):
        return tray.get_runtime_context().get_actor_name()

    def ids(self):
        rtc = tray.get_runtime_context()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            same = rtc.actor_id.hex() == rtc.get_actor_id() and rtc.task_id.hex() == rtc.get_task_id()
        return same, [str(w.message) for w in caught]


def test_actor_names_and_deprecated_id_properties(one_cpu):
    assert tray.get(Named.options(name="n1").remote().name.remote(), timeout=60) == "n1"
    unnamed = Named.remote()
    assert tray.get(unnamed.name.remote(), timeout=60) == ""  # Ray: "" in an unnamed actor
    same, messages = tray.get(unnamed.ids.remote(), timeout=60)
    assert same and any("Use get_actor_id() instead" in m for m in messages)
    assert any("Use get_task_id() instead" in m for m in messages)
    rtc = tray.get_runtime_context()
    assert rtc.get_actor_name() is None  # a driver
    with pytest.warns(DeprecationWarning, match=r"Use get_node_id\(\) instead"):
        assert rtc.node_id.hex() == rtc.get_node_id()
    with pytest.warns(DeprecationWarning, match="get_placement_group_id"):
        assert rtc.current_placement_group_id is None  # a driver is in no group


@tray.remote
def group_id():
    rtc = tray.get_runtime_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rtc.get_placement_group_id(), rtc.current_placement_group_id.hex()


def test_current_placement_group_id_in_a_group(one_cpu):
    pg = placement_group([{"CPU": 1}])
    tray.get(pg.ready(), timeout=60)
    strategy = PlacementGroupSchedulingStrategy(placement_group=pg)
    got, as_id = tray.get(group_id.options(scheduling_strategy=strategy).remote(), timeout=60)
    assert got == as_id == pg.id.hex()
    remove_placement_group(pg)


def test_get_if_exists_needs_a_name(one_cpu):
    with pytest.raises(ValueError, match="name must be specified"):
        Named.options(get_if_exists=True).remote()


def test_placement_group_fit_error_names_the_class(one_cpu):
    pg = placement_group([{"CPU": 1}])
    tray.get(pg.ready(), timeout=60)

    @tray.remote(num_cpus=1, num_gpus=8)
    class Big:
        pass

    strategy = PlacementGroupSchedulingStrategy(placement_group=pg)
    with pytest.raises(ValueError, match=r"Cannot schedule test_placement_group_fit_error_names_the_class\.<locals>"
                                         r"\.Big with the placement group .* cannot fit into any bundles"):
        Big.options(scheduling_strategy=strategy, name="big", get_if_exists=True).remote()
    remove_placement_group(pg)


@tray.remote
class Gate:
    """Calls wait until ``n`` have arrived, then all end at once, each with a sizeable result."""

    def __init__(self, n):
        import asyncio

        self.n, self.seen, self.open = n, [], asyncio.Event()

    async def enter(self, i):
        self.seen.append(i)
        if len(self.seen) >= self.n:
            self.open.set()
        await self.open.wait()
        return i, sorted(self.seen)


def test_replies_beyond_the_connections_high_water_all_arrive(one_cpu):
    n = 3000  # ~27 MiB of replies at once, beyond the connection's high water (8 MiB): once, those
    gate = Gate.options(max_concurrency=2 * n).remote(n)  # past it were dropped and their gets hung
    results = tray.get([gate.enter.remote(i) for i in range(n)], timeout=120)
    assert [i for i, _ in results] == list(range(n)) and all(len(seen) == n for _, seen in results)


def test_task_function_names_are_rays(one_cpu):
    from tray.runtime_context import RuntimeContext

    @tray.remote
    def nested():
        return tray.get_runtime_context().get_task_function_name()

    @tray.remote
    class Sync:
        def name(self):
            return tray.get_runtime_context().get_task_function_name()

    @tray.remote
    class Async:
        async def name(self):
            return tray.get_runtime_context().get_task_function_name()

    assert isinstance(tray.get_runtime_context(), RuntimeContext)
    assert tray.get(nested.remote(), timeout=60) == f"{__name__}.nested"  # module.name: no enclosing scopes
    assert tray.get(Sync.remote().name.remote(), timeout=60) == f"{__name__}.Sync.name"
    local = "test_task_function_names_are_rays.<locals>"  # an async actor's method: its qualname, as Ray gives it
    assert tray.get(Async.remote().name.remote(), timeout=60) == f"{__name__}.{local}.Async.name"


def test_inheriting_from_an_actor_class_is_rays_type_error():
    @tray.remote
    class Base:
        pass

    with pytest.raises(TypeError, match="Inheriting from actor classes is not currently supported"):

        class Derived(Base):  # noqa: F841
            pass


@tray.remote
class Exiting:
    def __init__(self, path):
        import atexit

        atexit.register(lambda: open(path, "w").write("ran"))
        self.calls = 0

    def call(self):
        self.calls += 1
        return self.calls

    def leave(self):
        tray.actor.exit_actor()


def _written(path, want):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(path) and open(path).read() == want:
            return True
        time.sleep(0.05)
    return False


def test_ray_terminate_ends_the_actor_after_earlier_calls_running_its_atexit_handlers(one_cpu, tmp_path):
    path = str(tmp_path / "terminated")
    a = Exiting.remote(path)
    assert tray.get(a.__ray_ready__.remote(), timeout=60) is True
    earlier = [a.call.remote() for _ in range(3)]
    end = a.__ray_terminate__.remote()
    assert tray.get(earlier, timeout=60) == [1, 2, 3]  # sent before it: they ran
    with pytest.raises(tray.exceptions.ActorDiedError):
        tray.get(end, timeout=60)
    with pytest.raises(tray.exceptions.ActorDiedError):
        tray.get(a.call.remote(), timeout=60)
    assert _written(path, "ran")


def test_exit_actor_runs_atexit_handlers_and_kill_does_not(one_cpu, tmp_path):
    left, killed = str(tmp_path / "left"), str(tmp_path / "killed")
    a, b = Exiting.remote(left), Exiting.remote(killed)
    tray.get([a.call.remote(), b.call.remote()], timeout=60)
    tray.wait([a.leave.remote()], timeout=60)
    assert _written(left, "ran")
    tray.kill(b)
    with pytest.raises(tray.exceptions.ActorDiedError):
        tray.get(b.call.remote(), timeout=60)
    assert not os.path.exists(killed)  # a kill is no exit: no handlers run


@tray.remote
def fails():
    raise ValueError("no")


def test_on_completed_calls_back_with_the_value_or_the_error(one_cpu):
    import threading

    seen, done = [], threading.Event()

    def record(value):
        seen.append(value)
        if len(seen) == 3:
            done.set()

    tray.put(7)._on_completed(record)
    started.remote(0.2)._on_completed(record)
    fails.options(max_retries=0).remote()._on_completed(record)
    assert done.wait(60)
    assert 7 in seen and any(isinstance(v, float) for v in seen)
    (error,) = [v for v in seen if isinstance(v, BaseException)]
    assert isinstance(error, ValueError)  # the task's own class (and a RayTaskError), as get raises it


@tray.remote
def node_labels():
    rtc = tray.get_runtime_context()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = rtc.get_resource_ids()
    return rtc.get_node_labels(), ids == rtc.get_accelerator_ids(), [str(w.message) for w in caught]


def test_node_labels_and_resource_ids():
    tray.init(num_cpus=1, include_dashboard=False, labels={"zone": "a"})
    try:
        labels, same, messages = tray.get(node_labels.remote(), timeout=60)
        assert labels["zone"] == "a" and labels["ray.io/node-id"] == tray.get_runtime_context().get_node_id()
        assert tray.get_runtime_context().get_node_labels() == labels  # the driver's node: the same one
        assert same and any("Use get_accelerator_ids() instead" in m for m in messages)
    finally:
        tray.shutdown()
