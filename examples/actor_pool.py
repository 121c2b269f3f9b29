"""An ActorPool spreads work over a few actors; a Queue feeds it from another process.

    python examples/actor_pool.py

Written as Ray code (``import tray as ray``): it runs unchanged on Ray.
"""

import tray as ray
from tray.util import ActorPool
from tray.util.queue import Queue


@ray.remote
class Squarer:
    """Each actor is a worker process; it handles one value at a time."""

    def square(self, x: int) -> int:
        return x * x


@ray.remote
def produce(q: Queue, n: int) -> None:
    """A task in another process fills the queue the driver reads; None ends it."""
    for i in range(n):
        q.put(i)  # waits while the queue is full
    q.put(None)


def main() -> None:
    ray.init(num_cpus=2)
    try:
        pool = ActorPool([Squarer.remote(), Squarer.remote()])
        print("map:          ", list(pool.map(lambda a, v: a.square.remote(v), range(8))))
        print("map_unordered:", sorted(pool.map_unordered(lambda a, v: a.square.remote(v), range(8))))

        q = Queue(maxsize=2)
        producer = produce.remote(q, 6)
        while (item := q.get(timeout=10)) is not None:
            pool.submit(lambda a, v: a.square.remote(v), item)  # queued in the pool if both are busy
        ray.get(producer)
        results = []
        while pool.has_next():
            results.append(pool.get_next())
        print("from queue:   ", results)
        assert results == [0, 1, 4, 9, 16, 25]
        q.shutdown()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
