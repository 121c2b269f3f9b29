"""RLlib's algorithms at Ray's import paths: ``tray.rllib.algorithms.ppo`` (and ``.dqn``, ``.impala``,
``.appo``); ``Algorithm`` and ``AlgorithmConfig`` here."""

from .algorithm_config import AlgorithmConfig, NotProvided


def __getattr__(name: str) -> object:
    # Algorithm (and with it torch) loads on first use: env runners import this package without torch.
    if name == "Algorithm":
        from .algorithm import Algorithm

        return Algorithm
    table = {"PPO": "ppo", "PPOConfig": "ppo", "DQN": "dqn", "DQNConfig": "dqn", "IMPALA": "impala",
             "IMPALAConfig": "impala", "APPO": "appo", "APPOConfig": "appo"}
    if name in table:
        import importlib

        return getattr(importlib.import_module(f".{table[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["APPO", "APPOConfig", "DQN", "DQNConfig", "IMPALA", "IMPALAConfig", "Algorithm", "AlgorithmConfig",
           "NotProvided", "PPO", "PPOConfig"]
