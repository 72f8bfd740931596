r"""XGrad: weight prediction in front of any optimizer (papers.md row 83)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from trainlab.errors import ConfigError, check_range
from trainlab.optim._registry import OPTIMIZERS


class XGrad(torch.optim.Optimizer):
    r"""Weight prediction (Guan, Li, Shi & Meng, "XGrad: Boosting Gradient-Based Optimizers
    With Weight Prediction", 2023; papers.md row 83) wrapped around any optimizer.

    Each step: predict the weights ``horizon`` steps ahead, evaluate the closure there (forward
    and backward at the predicted weights), restore the current weights, and let the wrapped
    optimizer apply its update with those gradients:

    .. math::
        \hat w_{t+s} = w_t + s\,(w_t - w_{t-1}),\qquad g_t = \nabla f(\hat w_{t+s}),\qquad
        w_{t+1} = w_t + \Delta_{\text{base}}(g_t)

    For SGD with momentum, Adam and AdamW at a constant learning rate, :math:`w_t - w_{t-1}`
    is the paper's :math:`-\gamma\,\Delta w_t` (the base optimizer's update direction
    from its current moments), so this is the paper's prediction without per-optimizer
    formulas; for Adam the bias-correction index of the paper's formula may differ from
    this by one step (not checked against the paper's text).
    Deviation: under a changing learning rate the last step is reused as is (the
    paper rescales it by the current rate); weight decay enters through the last step as well.
    The first step predicts :math:`\hat w = w_0`.

    Follows :mod:`trainlab.optim.closure`: ``step(closure)`` is required. ``param_groups`` are
    the wrapped optimizer's own (a scheduler on either one drives both). ``p.grad`` after the
    step holds the gradient at the predicted weights.

    Args:
        optimizer: the optimizer to boost (any ``torch.optim.Optimizer``).
        horizon: prediction steps :math:`s`, ``>= 0`` (paper uses 1; 0 = the plain optimizer).

    State keys: per parameter ``previous`` (:math:`w_{t-1}`); the wrapped optimizer's state is
    saved under ``"base"`` in ``state_dict()``.
    """

    requires_closure = True

    def __init__(self, optimizer: torch.optim.Optimizer, horizon: int = 1):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"XGrad wraps a torch.optim.Optimizer, got {type(optimizer)}")
        check_range("horizon", horizon, low=0, owner="XGrad")
        self.optimizer = optimizer
        self.horizon = horizon
        super().__init__(optimizer.param_groups, dict(optimizer.defaults))
        self.param_groups = optimizer.param_groups  # share, so lr changes reach the base

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is None:
            raise ConfigError("XGrad.step needs a closure that recomputes the loss and "
                              "gradients (see trainlab.optim.closure)")
        params = [p for g in self.param_groups for p in g["params"]]
        current = [p.detach().clone() for p in params]
        for p, w in zip(params, current):
            prev = self.state[p].get("previous")
            if prev is not None and self.horizon:
                p.add_(w - prev, alpha=self.horizon)
        with torch.enable_grad():
            loss = closure()
        for p, w in zip(params, current):
            p.copy_(w)
            self.state[p]["previous"] = w
        self.optimizer.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["base"] = self.optimizer.state_dict()
        sd["horizon"] = self.horizon
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        self.optimizer.load_state_dict(sd.pop("base"))
        self.horizon = sd.pop("horizon", self.horizon)
        super().load_state_dict(sd)
        self.param_groups = self.optimizer.param_groups


def xgrad(params: Any, lr: float = 1e-3, base: str = "adamw", horizon: int = 1,
          **base_hyper: Any) -> XGrad:
    """Build ``XGrad`` around the registered optimizer ``base`` (registry entry point).

    Deviations from the paper: those of :class:`XGrad` (the last step is reused as the
    predicted direction, so under a changing learning rate it is not rescaled, and
    weight decay enters the prediction); the default base optimizer ``adamw`` at lr 1e-3
    with ``horizon = 1`` is this library's choice (the paper evaluates several bases;
    not re-read for this paragraph).
    """
    from trainlab.optim._registry import build_optimizer

    return XGrad(build_optimizer(base, params, lr, **base_hyper), horizon=horizon)


OPTIMIZERS.register("xgrad", xgrad, papers=(83,),
                    summary="XGrad: gradients at predicted weights w + s (w - w_prev), any base")
