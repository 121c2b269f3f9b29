"""Actors for the supervision tree of ``services.toml``, and a short in-process demo of it.

    tray up examples/services.toml     # run the tree as a service (Ctrl-C stops it)
    python examples/services.py        # start the tree, crash a child, watch it come back
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

import trio

import tray
from tray.supervisors import Supervisor, load_config

log = logging.getLogger("services")


class Store(tray.Actor):
    """A key-value store."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


class Greeter(tray.Actor):
    """Greets people, counting visits in the store (found by name, so it survives store restarts)."""

    async def greet(self, who: str) -> str:
        if not who:
            raise ValueError("greet whom?")
        store = self.system.lookup("store")
        n = 1
        if store is not None:
            n = (await store.get.ask(who, 0)) + 1
            await store.put.ask(who, n)
        return f"hello {who} (visit {n})"


class Flaky(tray.Actor):
    """Crashes on demand, and once on its own ``crash_after`` seconds after its first start."""

    def __init__(self, crash_after: float | None = None) -> None:
        self.crash_after = crash_after

    def on_start(self) -> None:
        if self.crash_after is not None:
            self.ref.explode.tell_nowait(self.crash_after)

    def on_restart(self, exc: BaseException) -> None:
        log.info("flaky is back after: %s", type(exc).__name__)

    async def explode(self, after: float) -> None:
        await trio.sleep(after)
        raise RuntimeError(f"flaky: simulated crash after {after} s")

    def crash(self) -> None:
        raise RuntimeError("flaky: crash on demand")

    def ping(self) -> str:
        return "pong"


class Stage(tray.Actor):
    """One stage of a pipeline."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def process(self, item: Any) -> str:
        return f"{self.tag}({item})"


async def demo() -> None:
    # The same config, read as a dict, with flaky's timed crash turned off: we crash it ourselves.
    with open(Path(__file__).with_name("services.toml"), "rb") as f:
        config = tomllib.load(f)
    for child in config["children"]:
        if child["id"] == "flaky":
            child["kwargs"] = {}
    spec = load_config(config)

    async with tray.ActorSystem() as system:
        sup = await system.spawn(Supervisor, spec)
        greeter = system.lookup("greeter")
        print(await greeter.greet.ask("Ada"))
        print(await greeter.greet.ask("Ada"))

        flaky = await sup.child.ask("flaky")
        try:
            await flaky.crash.ask()
        except RuntimeError as e:
            print("flaky crashed:", str(e).splitlines()[0])
        with trio.fail_after(10):  # it comes back after its backoff (0.2 s)
            while (now := await sup.child.ask("flaky")) in (None, flaky):
                await trio.sleep(0.05)
        print("flaky restarted:", flaky, "->", now, "ping:", await now.ping.ask())

        for child_id, ref, status in await sup.which_children.ask():
            print(f"  {child_id:10} {status:10} {ref}")
        await system.stop(sup, "shutdown")  # children stop in reverse start order
        print("stopped:", system.actors())


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    trio.run(demo)
