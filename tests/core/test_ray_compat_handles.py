"""Actor lifetime by distributed handle counting, as Ray 2.60 does it (checked against Ray on
this machine): an actor ends when the last handle made by ``.remote()`` — or a copy of it,
wherever it travelled (task and actor arguments, return values, objects put in the store) —
is gone. ``get_actor`` and ``current_actor`` handles do not count (Ray's weak handles);
detached actors never end so; an actor's non-detached actors die with their creator; a
handle pickled outside tray (``cloudpickle.dumps``) keeps its actor for good, as in Ray."""

import os
import time

import cloudpickle
import psutil
import pytest

import tray
from tray.exceptions import ActorDiedError


def alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone_within(pid, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def stays(pid, seconds=1.5):
    """Still alive after ``seconds`` (past the owner's grace and the collect delay)."""
    time.sleep(seconds)
    return alive(pid)


@tray.remote
class Holder:
    def pid(self):
        return os.getpid()

    def hold(self, handle):
        self.held = handle
        return True

    def drop(self):
        self.held = None
        return True

    def ping_held(self):
        return tray.get(self.held[0].pid.remote() if isinstance(self.held, list) else self.held.pid.remote())

    def hold_self_weakly(self):
        self.me = tray.get_runtime_context().current_actor
        return True

    def make_child(self):
        self.child = Holder.remote()
        return tray.get(self.child.pid.remote())

    def make_child_for_caller(self):
        return [Holder.remote()]


@tray.remote
def call_later(handles, seconds):
    time.sleep(seconds)
    return tray.get(handles[0].pid.remote())


@tray.remote
def make_actor():
    return {"actor": Holder.remote()}


@tray.remote
def make_and_give(holder):
    child = Holder.remote()
    tray.get(holder.hold.remote(child))
    return tray.get(child.pid.remote())


def new_holder(**options):
    h = Holder.options(**options).remote() if options else Holder.remote()
    return h, tray.get(h.pid.remote(), timeout=60)


def test_the_creators_handle_going_ends_the_actor(ray):
    h, pid = new_holder()
    del h
    assert gone_within(pid)


def test_a_task_holding_a_copy_keeps_the_actor(ray):
    h, pid = new_holder()
    result = call_later.remote([h], 2.5)  # nested in a list: stays a handle, counted in the task
    del h
    time.sleep(1.0)
    assert alive(pid)
    assert tray.get(result, timeout=60) == pid
    assert gone_within(pid)


def test_an_actor_holding_a_copy_keeps_it_until_it_drops_it(ray):
    h, pid = new_holder()
    keeper, _ = new_holder()
    assert tray.get(keeper.hold.remote(h), timeout=60)
    del h
    assert stays(pid)
    assert tray.get(keeper.ping_held.remote(), timeout=60) == pid
    assert tray.get(keeper.drop.remote(), timeout=60)
    assert gone_within(pid)


def test_a_handle_inside_a_put_object_lives_with_the_object(ray):
    h, pid = new_holder()
    ref = tray.put([h])
    del h
    assert stays(pid)
    again = tray.get(ref, timeout=60)[0]
    assert tray.get(again.pid.remote(), timeout=60) == pid
    del again
    assert stays(pid, 0.5)  # the object still holds it
    del ref
    assert gone_within(pid)


def test_a_handle_returned_by_the_task_that_made_it(ray):
    out = tray.get(make_actor.remote(), timeout=60)
    pid = tray.get(out["actor"].pid.remote(), timeout=60)
    assert stays(pid)  # its creator (the task) is done; the caller's copy keeps it
    del out
    assert gone_within(pid)


def test_an_actor_made_by_a_finished_task_lives_in_the_actor_holding_it(ray):
    keeper, _ = new_holder()
    pid = tray.get(make_and_give.remote(keeper), timeout=60)
    assert stays(pid)
    assert tray.get(keeper.drop.remote(), timeout=60)
    assert gone_within(pid)


def test_named_actors_end_with_their_counted_handles_not_get_actor_ones(ray):
    h, pid = new_holder(name="handles-named")
    weak = tray.get_actor("handles-named")
    assert tray.get(weak.pid.remote(), timeout=60) == pid
    keeper, _ = new_holder()
    assert tray.get(keeper.hold.remote(tray.get_actor("handles-named")), timeout=60)
    del h  # only get_actor handles are left: Ray ends it
    assert gone_within(pid)
    with pytest.raises(ValueError):
        tray.get_actor("handles-named")
    with pytest.raises(ActorDiedError):
        tray.get(weak.pid.remote(), timeout=60)
    again, pid2 = new_holder(name="handles-named")  # the name is free again
    assert pid2 != pid
    del again
    assert gone_within(pid2)


def test_detached_actors_are_never_collected(ray):
    h, pid = new_holder(name="handles-detached", lifetime="detached")
    del h
    assert stays(pid)
    tray.kill(tray.get_actor("handles-detached"))
    assert gone_within(pid)


def test_self_handles(ray):
    h, pid = new_holder()
    assert tray.get(h.hold_self_weakly.remote(), timeout=60)  # current_actor: weak, as in Ray
    del h
    assert gone_within(pid)
    h, pid = new_holder()
    assert tray.get(h.hold.remote(h), timeout=60)  # a counted copy held by itself: a cycle, kept (as in Ray)
    del h
    assert stays(pid)
    os.kill(pid, 9)  # (max_restarts=0: it stays dead)


def test_an_actors_actors_die_with_it(ray):
    parent, _ = new_holder()
    child_pid = tray.get(parent.make_child.remote(), timeout=60)
    tray.kill(parent)
    assert gone_within(child_pid)
    parent, _ = new_holder()
    out = tray.get(parent.make_child_for_caller.remote(), timeout=60)
    child_pid = tray.get(out[0].pid.remote(), timeout=60)
    tray.kill(parent)  # the driver's copy does not save it: its owner is gone (Ray's fate sharing)
    assert gone_within(child_pid)
    with pytest.raises(ActorDiedError):
        tray.get(out[0].pid.remote(), timeout=60)


def test_a_handle_pickled_outside_tray_keeps_its_actor(ray):
    h, pid = new_holder()
    blob = cloudpickle.dumps(h)
    del h
    assert stays(pid)
    again = cloudpickle.loads(blob)
    assert tray.get(again.pid.remote(), timeout=60) == pid
    tray.kill(again)
    assert gone_within(pid)


def test_a_dead_borrower_holds_nothing(ray):
    h, pid = new_holder()
    keeper, _ = new_holder()
    assert tray.get(keeper.hold.remote(h), timeout=60)
    del h
    assert stays(pid)
    tray.kill(keeper)  # its process dies with its copy: the creator stops counting it (as Ray does)
    assert gone_within(pid)


@tray.remote
class WithCleanup:
    def __init__(self, path):
        self.path = path

    def pid(self):
        return os.getpid()

    def __ray_shutdown__(self):
        with open(self.path, "w") as f:
            f.write("cleaned up")


def test_an_actor_out_of_scope_runs_its_ray_shutdown_hook_a_killed_one_does_not(ray, tmp_path):
    a = WithCleanup.remote(str(tmp_path / "scope"))
    pid = tray.get(a.pid.remote(), timeout=60)
    del a
    assert gone_within(pid)
    assert (tmp_path / "scope").read_text() == "cleaned up"
    k = WithCleanup.remote(str(tmp_path / "kill"))
    pid = tray.get(k.pid.remote(), timeout=60)
    tray.kill(k)
    assert gone_within(pid)
    assert not (tmp_path / "kill").exists()


# ------------------------------------------------------- the counting, as a model

from hypothesis import settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule  # noqa: E402

from tray.core._objects import ObjectRef, ObjectTable  # noqa: E402


class HandleCounting(RuleBasedStateMachine):
    """An owner's table counts one actor's handles: local ones, pins of calls carrying a copy,
    borrowing processes (which may die). The actor ends only when none is left when its
    grace is over, and always then."""

    def __init__(self):
        super().__init__()
        self.table = ObjectTable("p.", lambda: None)
        self.unused = []
        self.table.on_handles_unused = self.unused.extend
        self.tid = self.table.add_handle("a1")
        self.refs = [ObjectRef(self.tid, None, self.table)]
        self.pins = 0
        self.borrowers = set()
        self.ended = False

    def in_use(self):
        return bool(self.refs) or self.pins > 0 or bool(self.borrowers)

    @precondition(lambda self: not self.ended)
    @rule()
    def copy_here(self):
        self.refs.append(ObjectRef(self.tid, None, self.table))

    @precondition(lambda self: not self.ended and self.refs)
    @rule()
    def drop_here(self):
        self.refs.pop()
        self.table.collect()

    @precondition(lambda self: not self.ended and self.in_use())
    @rule()
    def carried_by_a_call(self):
        self.table.pin([self.tid], +1)
        self.pins += 1

    @precondition(lambda self: self.pins > 0)
    @rule()
    def call_done(self):
        self.table.pin([self.tid], -1)
        self.pins -= 1

    @precondition(lambda self: not self.ended)
    @rule(who=st.sampled_from("xyz"))
    def borrowed(self, who):
        self.table.add_borrower(self.tid, who)
        self.borrowers.add(who)

    @rule(who=st.sampled_from("xyz"))
    def let_go(self, who):
        self.table.remove_borrower(self.tid, who)
        self.borrowers.discard(who)

    @rule(who=st.sampled_from("xyz"))
    def borrower_died(self, who):
        self.table.drop_borrower(who)
        self.borrowers.discard(who)

    @rule()
    def grace_over(self):
        unused, self.unused[:] = list(self.unused), []
        for oid in unused:
            if self.table.end_unused_handle(oid):
                assert not self.in_use(), "an actor in use was ended"
                self.ended = True

    @invariant()
    def unused_means_ending(self):
        if not self.ended and not self.in_use():
            assert self.table.entries[self.tid].ending, "nothing uses it, yet it would never end"
            assert self.tid in self.unused


TestHandleCounting = HandleCounting.TestCase
TestHandleCounting.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


@tray.remote
def echo(x):
    return x


def test_a_handle_coming_home_inside_a_result_keeps_its_actor(ray):
    h, pid = new_holder()
    out = echo.remote([h])
    del h
    assert stays(pid)  # the result holds a copy, though nobody has read it yet
    again = tray.get(out, timeout=60)[0]
    assert tray.get(again.pid.remote(), timeout=60) == pid
    del again, out
    assert gone_within(pid)
