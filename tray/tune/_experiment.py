"""One run of Tune, shared by ``Tuner.fit``, ``Tuner.restore`` and ``tune.run``: resolve the
trainable, make the search, scheduler, stopper, callbacks and reporter, and drive the controller."""

from __future__ import annotations

import copy
import os
import time
from typing import Any

import tray

from .._air import RunConfig
from ._controller import TuneController
from ._state import save_state, save_tuner
from .callback import Callback
from .experiment.trial import Trial
from .progress_reporter import CLIReporter
from .registry import get_trainable_cls
from .schedulers.trial_scheduler import FIFOScheduler, TrialScheduler
from .search.basic_variant import BasicVariantGenerator, SearchAlgorithm, SearchGenerator
from .search.searcher import Searcher
from .stopper import as_stopper
from .trainable import Trainable
from .trainable_util import trainable_name
from .tune_config import TuneConfig


def resolve_trainable(trainable: Any) -> tuple[Any, str]:
    if isinstance(trainable, str):
        return get_trainable_cls(trainable), trainable
    if trainable is None or not callable(trainable):
        raise TypeError(f"the trainable must be a function taking a config dict, a tune.Trainable subclass or a "
                        f"registered name, got {trainable!r}")
    if isinstance(trainable, type) and not issubclass(trainable, Trainable):
        raise TypeError(f"{trainable.__name__} is a class but not a tune.Trainable subclass")
    return trainable, trainable_name(trainable)


def _resources(trainable: Any, override: Any) -> tuple[Any, bool]:
    if override is not None:
        return override, False
    explicit = getattr(trainable, "_tray_resources", None)
    if explicit is not None:
        return explicit, False
    if isinstance(trainable, type) and issubclass(trainable, Trainable):
        cls = trainable
        if cls.default_resource_request.__func__ is not Trainable.default_resource_request.__func__:  # type: ignore[attr-defined]
            return (lambda config: cls.default_resource_request(config)), True
    return None, False


def _check_supported(tune_config: TuneConfig, run_config: RunConfig) -> None:
    """Options tray.tune does not implement fail here, by name, rather than being ignored."""
    storage = run_config.storage_path or ""
    if "://" in storage and not storage.startswith("file://"):
        raise ValueError(f"storage_path={storage!r}: tray.tune keeps runs on a filesystem path (local or shared); "
                         "URIs are not supported yet")
    for name in ("storage_filesystem", "sync_config", "log_to_file"):
        if getattr(run_config, name):
            raise ValueError(f"RunConfig({name}=...) is not supported by tray.tune: runs are kept on a filesystem "
                             "path, and a trial's output is in its worker's log (`tray logs`)")
    if tune_config.chdir_to_trial_dir:
        raise ValueError("TuneConfig(chdir_to_trial_dir=True) is not supported: trials share runner processes; "
                         "use tune.get_context().get_trial_dir()")


def default_callbacks(user: list[Callback]) -> list[Callback]:
    callbacks = list(user)
    if os.environ.get("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0") == "1":
        return callbacks
    import importlib.util

    if importlib.util.find_spec("tensorboardX") is None:  # Ray's rule; found, not imported (it imports torch)
        return callbacks
    from .callback import TBXLoggerCallback

    if not any(isinstance(c, TBXLoggerCallback) for c in callbacks):
        callbacks.append(TBXLoggerCallback())
    return callbacks


def run_experiment(trainable: Any, param_space: dict[str, Any], tune_config: TuneConfig, run_config: RunConfig, *,
                   resources_per_trial: Any = None, default_verbose: int = 1, restored: dict[str, Any] | None = None,
                   experiment_path: str | None = None) -> tuple[list[Trial], str]:
    trainable, name = resolve_trainable(trainable)
    if not isinstance(param_space, dict) and callable(getattr(param_space, "to_dict", None)):
        param_space = param_space.to_dict()  # an RLlib AlgorithmConfig, as Ray's Tuner takes it
    if not isinstance(param_space, dict):
        raise TypeError(f"param_space must be a dict, got {type(param_space).__name__}")
    if not tray.is_initialized():
        tray.init()
    _check_supported(tune_config, run_config)
    metric, mode = tune_config.metric, tune_config.mode
    if experiment_path is None:
        exp_name = run_config.name or f"{name}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
        experiment_path = os.path.join(os.path.expanduser(run_config.resolved_storage_path()), exp_name)
    exp_name = os.path.basename(experiment_path.rstrip("/"))
    os.makedirs(experiment_path, exist_ok=True)

    search_alg: SearchAlgorithm
    if restored is not None:
        search_alg, scheduler, stopper = restored["search_alg"], restored["scheduler"], restored["stopper"]
        if search_alg is None:  # saved without them (they did not pickle): finish the trials there are
            search_alg = BasicVariantGenerator()
            search_alg.setup({}, 0)
            scheduler = tune_config.scheduler or FIFOScheduler()
            stopper = as_stopper(run_config.stop)
        trials = restored["trials"]
    else:
        search = tune_config.search_alg
        if search is None:
            search_alg = BasicVariantGenerator()
        elif isinstance(search, Searcher):
            search_alg = SearchGenerator(search)
        elif isinstance(search, SearchAlgorithm):
            search_alg = search
        else:
            raise TypeError(f"search_alg must be a Searcher or BasicVariantGenerator, got {type(search).__name__}")
        if not search_alg.set_search_properties(metric, mode, param_space):
            raise ValueError(f"the search algorithm's metric/mode disagree with the run's ({metric}, {mode})")
        num_samples = tune_config.num_samples if tune_config.num_samples != -1 else 10**9
        search_alg.setup(param_space, num_samples)
        scheduler = tune_config.scheduler or FIFOScheduler()
        if not isinstance(scheduler, TrialScheduler):
            raise TypeError(f"scheduler must be a TrialScheduler, got {type(scheduler).__name__}")
        if not scheduler.set_search_properties(metric, mode):
            raise ValueError(f"the scheduler's metric/mode disagree with the run's ({metric}, {mode})")
        stopper = as_stopper(run_config.stop)
        trials = []
        spec = {"param_space": param_space, "tune_config": tune_config, "run_config": run_config,
                "trainable_name": name, "resources_per_trial": resources_per_trial}
        rc = copy.copy(run_config)
        rc.callbacks, rc.progress_reporter = None, None
        tc = copy.copy(tune_config)
        tc.search_alg, tc.scheduler = None, None
        # what does not pickle (callbacks, reporters, a user's searcher) is left out, in that order
        for attempt in (spec, {**spec, "run_config": rc}, {**spec, "run_config": rc, "tune_config": tc}):
            try:
                save_tuner(experiment_path, attempt)
                break
            except Exception:  # noqa: BLE001
                continue

    verbose = run_config.verbose if run_config.verbose is not None else default_verbose
    reporter = None
    if verbose >= 1:
        reporter = run_config.progress_reporter or CLIReporter(metric=metric, mode=mode)
        reporter.setup(start_time=time.time(), total_samples=search_alg.total_samples, metric=metric, mode=mode)
    resources, from_default = _resources(trainable, resources_per_trial)
    is_class = isinstance(trainable, type) and issubclass(trainable, Trainable)
    ckpt = run_config.checkpoint_config
    if not is_class and ckpt is not None and (ckpt.checkpoint_frequency or ckpt.checkpoint_at_end):
        raise ValueError("checkpoint_frequency and checkpoint_at_end are for class trainables (Tune calls their "
                         "save()); a function trainable checkpoints with tune.report(..., checkpoint=...)")
    reuse = tune_config.reuse_actors if tune_config.reuse_actors is not None else True
    assert run_config.failure_config is not None and run_config.checkpoint_config is not None
    controller = TuneController(
        trainable=trainable, trainable_name=name, search_alg=search_alg, scheduler=scheduler, stopper=stopper,
        metric=metric, mode=mode, experiment_path=experiment_path, experiment_name=exp_name, resources=resources,
        resources_from_default=from_default, max_concurrent_trials=tune_config.max_concurrent_trials,
        time_budget_s=tune_config.time_budget_s, reuse_actors=reuse, failure_config=run_config.failure_config,
        checkpoint_config=run_config.checkpoint_config, callbacks=default_callbacks(run_config.callbacks or []),
        reporter=reporter, trials=trials, state_saver=save_state, is_class=is_class,
        trial_name_creator=tune_config.trial_name_creator, trial_dirname_creator=tune_config.trial_dirname_creator)
    return controller.run(), experiment_path
