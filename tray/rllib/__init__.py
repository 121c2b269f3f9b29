"""tray.rllib: reinforcement learning at Ray RLlib's API (``from tray.rllib.algorithms.ppo import PPOConfig``).

Algorithms (PPO, DQN, IMPALA, APPO) are Tune Trainables; env runners are supervised actors
acting in numpy with weights put once per update; the learner is a torch module in the
algorithm's own process. Needs ``pip install "tray[rllib]"`` (gymnasium, torch).
"""

from tray import lowlevel as _lowlevel

_lowlevel.require("gymnasium", "rllib")
_lowlevel.require("numpy", "rllib")

__all__: list[str] = []
