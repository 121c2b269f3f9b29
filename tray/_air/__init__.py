"""What Tune and Train share (Ray's ``ray.air``/``ray.train`` common pieces): ``Checkpoint``,
the run configs, ``Result``, ``PlacementGroupFactory`` and the report session behind
``tune.report``/``train.report``. Both ``tray.tune`` and ``tray.train`` re-export these names."""

from .checkpoint import Checkpoint
from .config import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from .resources import PlacementGroupFactory
from .result import Result
from .session import Session, SessionStopped, TrainContext, get_checkpoint, get_context, get_session, report

__all__ = [
    "Checkpoint",
    "CheckpointConfig",
    "FailureConfig",
    "PlacementGroupFactory",
    "Result",
    "RunConfig",
    "ScalingConfig",
    "Session",
    "SessionStopped",
    "TrainContext",
    "get_checkpoint",
    "get_context",
    "get_session",
    "report",
]
