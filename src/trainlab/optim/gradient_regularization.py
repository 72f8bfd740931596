r"""Gradient-norm regularization (GR) by finite differences or by double backprop.

GR minimizes :math:`\tilde L(w) = L(w) + \tfrac{\gamma}{2}\|\nabla L(w)\|^2`, whose gradient is
:math:`g + \gamma H g`. Three ways to compute it (``method``):

* ``"forward"`` (F-GR, the paper's recommendation): an ascent step then the descent gradient,
  :math:`(1 - \gamma/\varepsilon)\, g + (\gamma/\varepsilon)\, \nabla L(w + \varepsilon g)`;
* ``"backward"`` (B-GR): :math:`(1 + \gamma/\varepsilon)\, g - (\gamma/\varepsilon)\,
  \nabla L(w - \varepsilon g)`;
* ``"double_backprop"`` (DB): the exact :math:`g + \gamma H g`, with the Hessian-vector product
  taken from the closure's ``hvp`` (a :class:`~trainlab.optim.closure.LossClosure`).

Both finite differences cost two closure calls; their error is O(epsilon), and the paper finds
larger ascent steps generalize better (an implicit bias, not an error to shrink).

References:
    Karakida, Takase, Hayase, Osawa. "Understanding Gradient Regularization in Deep
    Learning: Efficient Finite-Difference Computation and Implicit Bias", ICML 2023
    (papers.md row 12). The paper sweeps gamma and epsilon; defaults here (gamma=0.05,
    epsilon=0.05) are a starting point, not the paper's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.optim._outer import OuterOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.sam import gradient_at

METHODS = ("forward", "backward", "double_backprop")


class GradientRegularization(OuterOptimizer):
    """Gradient-norm regularization over a base optimizer (default ``"sgd"``).

    Args:
        params, lr: as for any optimizer (``lr`` goes to the base).
        gamma: penalty strength, >= 0. epsilon: finite-difference step, > 0.
        method: ``"forward"``, ``"backward"`` or ``"double_backprop"`` (needs a closure with
            ``hvp``, e.g. :func:`~trainlab.optim.closure.make_closure`).
        base, **base_hyper: the base optimizer and its hyper-parameters.
    """

    joint_hypers = ("gamma", "epsilon", "method")

    def __init__(self, params: Iterable[Any], lr: float = 0.1, gamma: float = 0.05,
                 epsilon: float = 0.05,
                 method: Literal["forward", "backward", "double_backprop"] = "forward",
                 base: str = "sgd", **base_hyper: Any):
        check_range("gamma", gamma, low=0.0, owner="GradientRegularization")
        check_range("epsilon", epsilon, low=0.0, low_open=True, owner="GradientRegularization")
        check_range("lr", lr, low=0.0, owner="GradientRegularization")
        check_choice("method", method, METHODS, owner="GradientRegularization")
        super().__init__(params, lr, {"gamma": gamma, "epsilon": epsilon, "method": method},
                         base, base_hyper)

    def direction(self, closure, params, loss, grads):
        h = self.param_groups[0]
        gamma, eps, method = h["gamma"], h["epsilon"], h["method"]
        if method == "double_backprop":
            hvp = getattr(closure, "hvp", None)
            if hvp is None:
                raise ConfigError("GradientRegularization(method='double_backprop') needs a "
                                  "closure with an hvp method (trainlab.optim.closure."
                                  "make_closure)")
            return [g + gamma * hg for g, hg in zip(grads, hvp(grads))]
        sign = 1.0 if method == "forward" else -1.0
        shifted = gradient_at(closure, params, [sign * eps * g for g in grads])
        c = gamma / eps
        return [(1 - sign * c) * g + sign * c * s for g, s in zip(grads, shifted)]


def gradient_regularization(params: Iterable[Any], lr: float = 0.1, gamma: float = 0.05,
                            epsilon: float = 0.05, method: str = "forward", base: str = "sgd",
                            **base_hyper: Any) -> GradientRegularization:
    """Gradient-norm regularization (F-GR, B-GR or double backprop) over a base optimizer.

    Deviations from the paper: the defaults ``gamma = epsilon = 0.05`` and the base SGD
    at lr 0.1 are this library's starting point (the paper sweeps gamma and epsilon);
    the finite-difference and double-backprop forms follow the module docstring's
    statement of the paper, which was not re-read for this paragraph.
    """
    return GradientRegularization(params, lr=lr, gamma=gamma, epsilon=epsilon, method=method,
                                  base=base, **base_hyper)


OPTIMIZERS.register("gradient-regularization", gradient_regularization, papers=(12,),
                    summary="gradient-norm penalty by finite differences (F-GR/B-GR) or double "
                            "backprop")
