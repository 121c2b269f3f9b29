"""Handles, composition, streaming, batching, reconfigure, multiplexing, status and bad input."""

from __future__ import annotations

import asyncio
import os

import pytest

from tray import serve
from tray.serve.exceptions import RayServeException


@serve.deployment
class Adder:
    def __init__(self, k: int) -> None:
        self.k = k

    def add(self, x: int) -> int:
        return x + self.k

    def count(self, n: int):
        for i in range(n):
            yield i * self.k


@serve.deployment
class Doubler:
    async def double(self, x: int) -> int:
        return 2 * x


@serve.deployment
class Pipeline:
    def __init__(self, adder, doubler) -> None:
        self.adder = adder
        self.doubler = doubler

    async def __call__(self, x: int) -> int:
        # a response passed into another call without waiting for it
        return await self.doubler.double.remote(self.adder.add.remote(x))

    async def where(self) -> str:
        ctx = serve.get_replica_context()
        return f"{ctx.app_name}/{ctx.deployment}"


def test_composition_and_response_passing(env) -> None:
    h = serve.run(Pipeline.bind(Adder.bind(10), Doubler.bind()), name="pipe", route_prefix=None)
    assert h.remote(1).result(timeout_s=60) == 22
    assert [r.result() for r in [h.remote(i) for i in range(20)]] == [2 * (i + 10) for i in range(20)]
    assert h.where.remote().result() == "pipe/Pipeline"
    # handles by name; a response from one call as another's argument, from the driver
    adder = serve.get_deployment_handle("Adder", "pipe")
    doubler = serve.get_deployment_handle("Doubler", "pipe")
    assert doubler.double.remote(adder.add.remote(5)).result() == 30
    assert serve.get_app_handle("pipe").remote(0).result() == 20
    st = serve.status().applications["pipe"]
    assert st.status == "RUNNING"
    assert set(st.deployments) == {"Adder", "Doubler", "Pipeline"}
    assert all(d.status == "HEALTHY" and d.replica_states == {"RUNNING": 1} for d in st.deployments.values())


def test_await_from_asyncio_and_streaming(env) -> None:
    h = serve.run(Adder.bind(3), name="adder", route_prefix=None)

    async def main() -> list[int]:
        vals = await asyncio.gather(*[h.add.remote(i) for i in range(5)])
        got = [x async for x in h.options(stream=True).count.remote(4)]
        return list(vals) + got

    assert asyncio.run(main()) == [3, 4, 5, 6, 7, 0, 3, 6, 9]
    assert list(h.options(stream=True, method_name="count").remote(3)) == [0, 3, 6]
    with pytest.raises(TypeError, match="stream=True"):
        h.count.remote(2).result()


def test_user_exception_reaches_caller(env) -> None:
    @serve.deployment
    def fails(x: int) -> int:
        raise KeyError(f"no {x}")

    h = serve.run(fails.bind(), name="fails", route_prefix=None)
    with pytest.raises(KeyError, match="no 3"):
        h.remote(3).result()


def test_batching(env) -> None:
    @serve.deployment(max_ongoing_requests=100)
    class Batched:
        def __init__(self) -> None:
            self.sizes: list[int] = []

        @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.2)
        async def handle(self, xs: list[int]) -> list[int]:
            self.sizes.append(len(xs))
            return [x * 10 for x in xs]

        async def __call__(self, x: int) -> int:
            return await self.handle(x)

        def batch_sizes(self) -> list[int]:
            return self.sizes

    h = serve.run(Batched.bind(), name="batched", route_prefix=None)
    out = [r.result(timeout_s=60) for r in [h.remote(i) for i in range(16)]]
    assert out == [i * 10 for i in range(16)]
    sizes = h.batch_sizes.remote().result()
    assert sum(sizes) == 16 and max(sizes) > 1 and max(sizes) <= 8


def test_reconfigure_in_place(env) -> None:
    @serve.deployment(user_config={"greeting": "hello"}, num_replicas=2)
    class Greeter:
        def reconfigure(self, cfg: dict) -> None:
            self.greeting = cfg["greeting"]

        def __call__(self, name: str) -> tuple[str, int]:
            return f"{self.greeting} {name}", os.getpid()

    h = serve.run(Greeter.bind(), name="greet", route_prefix=None)
    before = {h.remote("a").result()[1] for _ in range(20)}
    assert h.remote("a").result()[0] == "hello a"
    serve.run(Greeter.options(user_config={"greeting": "hola"}).bind(), name="greet", route_prefix=None)
    results = [h.remote("b").result() for _ in range(20)]
    assert {r[0] for r in results} == {"hola b"}
    assert {r[1] for r in results} <= before  # the same replica processes, reconfigured


def test_multiplexed_models(env) -> None:
    @serve.deployment
    class ModelHost:
        def __init__(self) -> None:
            self.loads: list[str] = []

        @serve.multiplexed(max_num_models_per_replica=2)
        async def get_model(self, model_id: str) -> str:
            self.loads.append(model_id)
            return f"model-{model_id}"

        async def __call__(self) -> str:
            return await self.get_model(serve.get_multiplexed_model_id())

        def loaded(self) -> list[str]:
            return self.loads

    h = serve.run(ModelHost.bind(), name="mux", route_prefix=None)
    for mid in ["a", "a", "b", "a", "c", "a"]:
        assert h.options(multiplexed_model_id=mid).remote().result() == f"model-{mid}"
    assert h.loaded.remote().result() == ["a", "b", "c"]  # a stayed cached (LRU of 2)


def test_bad_input_errors(env) -> None:
    with pytest.raises(ValueError, match="num_replicas"):
        serve.deployment(num_replicas=-1)(Doubler.func_or_class)
    with pytest.raises(ValueError, match="start with"):
        serve.run(Doubler.bind(), name="bad", route_prefix="nope")
    with pytest.raises(ValueError, match="max_ongoing_requests"):
        Doubler.options(max_ongoing_requests=0)
    with pytest.raises(ValueError, match="min_replicas"):
        Doubler.options(autoscaling_config={"min_replicas": 3, "max_replicas": 1})
    with pytest.raises(TypeError, match="Application"):
        serve.run(Doubler)
    with pytest.raises(RayServeException, match="does not exist"):
        serve.get_app_handle("no-such-app")


def test_failing_constructor_is_deploy_failed(env) -> None:
    @serve.deployment
    class Broken:
        def __init__(self) -> None:
            raise RuntimeError("cannot load weights")

    with pytest.raises(RuntimeError, match="cannot load weights"):
        serve.run(Broken.bind(), name="broken", route_prefix=None)
    app = serve.status().applications["broken"]
    assert app.status == "DEPLOY_FAILED"
    assert app.deployments["Broken"].status == "DEPLOY_FAILED"
    assert "cannot load weights" in app.deployments["Broken"].message


def test_delete_application(env) -> None:
    h = serve.run(Doubler.bind(), name="gone", route_prefix=None)
    assert h.double.remote(2).result() == 4
    serve.delete("gone")
    assert "gone" not in serve.status().applications
    with pytest.raises(RayServeException):
        serve.get_app_handle("gone")
