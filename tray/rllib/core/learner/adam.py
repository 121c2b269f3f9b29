"""Adam for the learner's small modules, without ``torch.optim``.

``torch.optim.Optimizer.__init__`` imports ``torch._dynamo`` on first use, 1.5-5 s here: more
than building the whole algorithm may take. This is the same update rule (Kingma & Ba, with
torch's defaults) in a few tensor ops, with ``zero_grad``/``step``/``state_dict`` as torch's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


class Adam:
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps = lr, betas, eps
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
        step_size = self.lr / bc1
        for p, m, v in zip(self.params, self.m, self.v, strict=False):
            if p.grad is None:
                continue
            g = p.grad
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v.sqrt() / math.sqrt(bc2)).add_(self.eps), value=-step_size)

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "lr": self.lr, "m": [x.clone() for x in self.m], "v": [x.clone() for x in self.v]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.lr = state["t"], state["lr"]
        for dst, src in zip(self.m + self.v, state["m"] + state["v"], strict=False):
            dst.copy_(src)
