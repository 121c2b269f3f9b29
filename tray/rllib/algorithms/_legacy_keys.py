"""Old RLlib config keys (the dict API of Ray 1.x/2.x's old stack) mapped to today's names.

Pure: a dict in, a dict out; :meth:`AlgorithmConfig.update_from_dict` applies the result.
"""

from __future__ import annotations

from typing import Any

# old key -> today's attribute name
RENAMED: dict[str, str] = {
    "num_workers": "num_env_runners",
    "num_rollout_workers": "num_env_runners",
    "num_envs_per_worker": "num_envs_per_env_runner",
    "num_cpus_per_worker": "num_cpus_per_env_runner",
    "num_cpus_for_driver": "num_cpus_for_main_process",
    "num_cpus_for_local_worker": "num_cpus_for_main_process",
    "train_batch_size": "train_batch_size_per_learner",
    "sgd_minibatch_size": "minibatch_size",
    "num_sgd_iter": "num_epochs",
    "lambda": "lambda_",
    "model": "model_config",
    "evaluation_num_workers": "evaluation_num_env_runners",
    "recreate_failed_workers": "restart_failed_env_runners",
    "recreate_failed_env_runners": "restart_failed_env_runners",
    "ignore_worker_failures": "ignore_env_runner_failures",
    "max_num_worker_restarts": "max_num_env_runner_restarts",
}


def translate(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``config`` with old keys renamed, and the old keys that were renamed (for a warning).

    A key given under both its old and new name is an error: which one to keep is ambiguous.
    """
    out: dict[str, Any] = {}
    renamed: list[str] = []
    for key, value in config.items():
        new = RENAMED.get(key, key)
        if new != key:
            renamed.append(key)
            if new in config:
                raise ValueError(f"config gives both {key!r} and its new name {new!r}; keep {new!r} only")
        out[new] = value
    return out, renamed
