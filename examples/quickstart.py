"""Quick start: Ray's two seed examples, unchanged but for the import.

    python examples/quickstart.py
"""

import tray as ray

ray.init()


# Tasks: a function runs in parallel worker processes.
@ray.remote
def f(x):
    return x * x


futures = [f.remote(i) for i in range(4)]
print(ray.get(futures))  # [0, 1, 4, 9]


# Actors: a class whose instances live in worker processes and keep their state.
@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def increment(self):
        self.n += 1

    def read(self):
        return self.n


counters = [Counter.remote() for i in range(4)]
[c.increment.remote() for c in counters]
futures = [c.read.remote() for c in counters]
print(ray.get(futures))  # [1, 1, 1, 1]

ray.shutdown()
