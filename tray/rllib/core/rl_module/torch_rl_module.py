"""The default torch RLModules: an actor-critic MLP (PPO, APPO, IMPALA) and a Q-network (DQN).

Ray's RLModule API: ``forward_inference``/``forward_exploration``/``forward_train`` take a batch
dict with ``"obs"`` and return ``"action_dist_inputs"`` (logits, or mean and log-std for a Box
action space) and, for training, ``"vf_preds"`` (or ``"qf_preds"``). ``numpy_weights()`` is what
env runners act with (see ``numpy_policy``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ...utils.error import UnsupportedSpaceException

_ACT: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "linear": nn.Identity, "silu": nn.SiLU,
                                     "swish": nn.SiLU, "elu": nn.ELU}


def obs_size(space: gym.Space) -> int:
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    raise UnsupportedSpaceException(f"observation space {space} is not supported (Box or Discrete)")


def _mlp(sizes: list[int], act: str, last_linear: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if not (last_linear and i == len(sizes) - 2):
            layers.append(_ACT[act]())
    return nn.Sequential(*layers)


_ACT_NAMES = {nn.Tanh: "tanh", nn.ReLU: "relu", nn.Identity: "linear", nn.SiLU: "silu", nn.ELU: "elu"}


def _linears(seq: nn.Module) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Each Linear of ``seq`` (nested Sequentials flattened) as ``(W (in, out), b, activation after it)``."""
    flat = [m for m in seq.modules() if not isinstance(m, nn.Sequential)]
    out = []
    for i, m in enumerate(flat):
        if isinstance(m, nn.Linear):
            nxt = flat[i + 1] if i + 1 < len(flat) else None
            act = "linear"
            if nxt is not None and not isinstance(nxt, nn.Linear):
                act = _ACT_NAMES.get(type(nxt), "linear")
            out.append((m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy(), act))
    return out


def _head(n_in: int, head_hidden: list[int], n_out: int, head_act: str) -> nn.Sequential:
    return _mlp([n_in, *head_hidden, n_out], head_act, last_linear=True)


class TorchRLModule(nn.Module):
    """Base of tray's torch RLModules (Ray's ``TorchRLModule`` role)."""

    framework = "torch"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, model_config: dict) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.model_config = dict(model_config)
        self.activation = model_config.get("fcnet_activation", "tanh")

    def forward_inference(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self._forward(batch)

    def forward_exploration(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self._forward(batch)

    def forward_train(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self._forward(batch)

    def _forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _obs(self, batch: dict[str, Any]) -> torch.Tensor:
        obs = batch["obs"]
        if not isinstance(obs, torch.Tensor):
            obs = torch.as_tensor(np.asarray(obs, np.float32))
        space = self.observation_space
        if isinstance(space, gym.spaces.Discrete) and (obs.dim() == 0 or obs.shape[-1] != space.n):
            obs = torch.nn.functional.one_hot(obs.long().reshape(-1) - space.start, space.n)
        return obs.float().reshape(-1, obs_size(space))

    def get_state(self) -> dict[str, Any]:
        return {k: v.detach().clone() for k, v in self.state_dict().items()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state)


class ActorCriticModule(TorchRLModule):
    """An MLP policy and value function; a shared trunk when ``vf_share_layers``."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, model_config: dict) -> None:
        super().__init__(observation_space, action_space, model_config)
        hidden = list(model_config.get("fcnet_hiddens", [256, 256]))
        if isinstance(action_space, gym.spaces.Discrete):
            self.dist, out = "categorical", int(action_space.n)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self.dist, out = "gaussian", 2 * int(action_space.shape[0])
        else:
            raise UnsupportedSpaceException(f"action space {action_space} is not supported (Discrete or 1-D Box)")
        self.free_log_std = bool(model_config.get("free_log_std", False)) and self.dist == "gaussian"
        n_in = obs_size(observation_space)
        self.shared = bool(model_config.get("vf_share_layers", True))
        act, head_act = self.activation, model_config.get("head_fcnet_activation", "relu")
        head_hidden = list(model_config.get("head_fcnet_hiddens", []))
        pi_out = out // 2 if self.free_log_std else out
        last = hidden[-1] if hidden else n_in
        if self.shared:
            self.enc = _mlp([n_in, *hidden], act, last_linear=False)
            self.pi = _head(last, head_hidden, pi_out, head_act)
            self.vf = _head(last, head_hidden, 1, head_act)
        else:
            self.enc = nn.Sequential()
            self.pi = nn.Sequential(_mlp([n_in, *hidden], act, last_linear=False),
                                    _head(last, head_hidden, pi_out, head_act))
            self.vf = nn.Sequential(_mlp([n_in, *hidden], act, last_linear=False),
                                    _head(last, head_hidden, 1, head_act))
        if self.free_log_std:
            self.log_std = nn.Parameter(torch.zeros(out // 2))
        with torch.no_grad():  # a small last policy layer: near-uniform actions at the start
            last_pi = [m for m in self.pi.modules() if isinstance(m, nn.Linear)][-1]
            last_pi.weight.mul_(0.01)
            last_pi.bias.zero_()

    def _forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        h = self.enc(self._obs(batch))
        logits = self.pi(h)
        if self.free_log_std:
            logits = torch.cat([logits, self.log_std.expand_as(logits)], dim=-1)
        return {"action_dist_inputs": logits, "vf_preds": self.vf(h).squeeze(-1)}

    def compute_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.vf(self.enc(obs)).squeeze(-1)

    def dist_and_values(self, obs: torch.Tensor) -> tuple[torch.distributions.Distribution, torch.Tensor]:
        out = self._forward({"obs": obs})
        return self.distribution(out["action_dist_inputs"]), out["vf_preds"]

    def distribution(self, inputs: torch.Tensor) -> torch.distributions.Distribution:
        if self.dist == "categorical":
            return torch.distributions.Categorical(logits=inputs)
        mean, log_std = inputs.chunk(2, dim=-1)
        return torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1)

    def numpy_weights(self) -> dict[str, Any]:
        pi = _linears(self.pi)
        if self.free_log_std:  # fold the free log-std into the head as a constant output
            w, b, a = pi[-1]
            k = w.shape[1]
            pi[-1] = (np.concatenate([w, np.zeros_like(w)], axis=1),
                      np.concatenate([b, self.log_std.detach().numpy().reshape(k)]), a)
        return {"dist": self.dist, "enc": _linears(self.enc), "pi": pi,
                "vf": _linears(self.vf)}


class QModule(TorchRLModule):
    """A Q-network for a Discrete action space; dueling heads (value + advantage) when ``dueling``."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, model_config: dict,
                 dueling: bool = True) -> None:
        super().__init__(observation_space, action_space, model_config)
        if not isinstance(action_space, gym.spaces.Discrete):
            raise UnsupportedSpaceException(f"DQN needs a Discrete action space, got {action_space}")
        hidden = list(model_config.get("fcnet_hiddens", [256, 256]))
        n_in, n_out = obs_size(observation_space), int(action_space.n)
        self.num_actions = n_out
        self.dueling = dueling
        head_act = model_config.get("head_fcnet_activation", "relu")
        head_hidden = list(model_config.get("head_fcnet_hiddens", []))
        self.enc = _mlp([n_in, *hidden], self.activation, last_linear=False)
        last = hidden[-1] if hidden else n_in
        self.q = _head(last, head_hidden, n_out, head_act)
        self.v = _head(last, head_hidden, 1, head_act) if dueling else None

    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        h = self.enc(obs)
        adv = self.q(h)
        if self.v is None:
            return adv
        return self.v(h) + adv - adv.mean(dim=-1, keepdim=True)

    def _forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        q = self.q_values(self._obs(batch))
        return {"action_dist_inputs": q, "qf_preds": q}

    def numpy_weights(self) -> dict[str, Any]:
        return {"dist": "q", "num_actions": self.num_actions,
                "enc": _linears(self.enc), "q": _linears(self.q), "v": _linears(self.v) if self.v is not None else []}


# Ray's name for the default PPO module class.
DefaultPPOTorchRLModule = ActorCriticModule
