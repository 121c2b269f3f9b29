"""The training context (Ray's ``ray.train.context``): who this worker is inside its group.

It is the context Tune and Train share (``tray._air.session``): ranks and sizes inside a Train
worker, the trial's names and directory, and the run's storage path.
"""

from __future__ import annotations

from .._air.session import TrainContext, get_context

__all__ = ["TrainContext", "get_context"]
