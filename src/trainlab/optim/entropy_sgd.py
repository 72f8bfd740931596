r"""Entropy-SGD: descend the local entropy, estimated by an inner Langevin loop.

Entropy-SGD minimizes the negative local entropy
:math:`-F(x;\gamma) = -\log \int e^{-f(x') - \frac\gamma2 \|x - x'\|^2} dx'`, whose gradient is
:math:`\gamma (x - \langle x' \rangle)`, the mean taken under the Gibbs measure around
:math:`x`. Each step estimates :math:`\langle x'\rangle` with ``L`` steps of stochastic
gradient Langevin dynamics started at :math:`x`:

.. math::
    x' &\leftarrow x' - \eta' \big(\nabla f(x') - \gamma (x - x')\big)
          + \sqrt{\eta'}\,\varepsilon\, \xi, \quad \xi \sim \mathcal N(0, I) \\
    \mu &\leftarrow (1 - \alpha)\, \mu + \alpha\, x'

and hands :math:`\gamma (x - \mu)` to the base optimizer as the gradient (the paper uses SGD
with Nesterov momentum and learning rate 1).

Closure contract (:mod:`trainlab.optim.closure`): the inner loop calls the closure ``L`` times
at the Langevin iterate; the first call, at :math:`x`, also gives the first inner gradient.
**Here, and only here, the closure may return a fresh minibatch on each call** (the paper's
inner loop samples a minibatch per Langevin step). ``p.grad`` after the step is the first
call's gradient.

References:
    Chaudhari, Choromanska, Soatto, LeCun, Baldassi, Borgs, Chayes, Sagun, Zecchina.
    "Entropy-SGD: Biasing Gradient Descent Into Wide Valleys", ICLR 2017 (papers.md row 53).
    Defaults from the paper: L = 20, gamma = 0.03, inner lr 0.1, noise 1e-4, alpha = 0.75.

Deviations from the paper:
    The paper's scoping schedule (gamma growing as ``gamma0 (1 + gamma1)^t``) is left to the
    caller (change ``gamma`` in the param group between steps). The running mean puts
    ``alpha`` on the new inner iterate, as the paper's Algorithm 1 reads here; the authors'
    code puts 0.75 on the old mean, scales the Langevin noise differently and leaves
    :math:`\gamma` out of the outer step (the mapping is in the test against their code).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from trainlab.errors import check_range
from trainlab.optim._generator import DrawsRandom, optimizer_generator
from trainlab.optim._outer import OuterOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.loss_closure import evaluate


class EntropySGD(DrawsRandom, OuterOptimizer):
    """Entropy-SGD over a base optimizer (default ``"sgd"``; the paper: Nesterov momentum).

    Args:
        params, lr: as for any optimizer (``lr`` goes to the base; paper: 1.0).
        inner_steps: Langevin steps ``L`` >= 1. gamma: coupling ``gamma`` > 0.
        inner_lr: Langevin step ``eta'`` > 0. noise: thermal noise ``epsilon`` >= 0.
        alpha: averaging weight in (0, 1].
        generator: randomness of the Langevin noise.
        base, **base_hyper: the base optimizer and its hyper-parameters.
    """

    joint_hypers = ("gamma", "inner_lr", "noise", "alpha", "inner_steps")
    stochastic = True

    def __init__(self, params: Iterable[Any], lr: float = 1.0, inner_steps: int = 20,
                 gamma: float = 0.03, inner_lr: float = 0.1, noise: float = 1e-4,
                 alpha: float = 0.75, generator: torch.Generator | None = None,
                 base: str = "sgd", **base_hyper: Any):
        owner = "EntropySGD"
        check_range("lr", lr, low=0.0, owner=owner)
        check_range("inner_steps", inner_steps, low=1, owner=owner)
        check_range("gamma", gamma, low=0.0, low_open=True, owner=owner)
        check_range("inner_lr", inner_lr, low=0.0, low_open=True, owner=owner)
        check_range("noise", noise, low=0.0, owner=owner)
        check_range("alpha", alpha, low=0.0, high=1.0, low_open=True, owner=owner)
        super().__init__(params, lr, dict(inner_steps=inner_steps, gamma=gamma,
                                          inner_lr=inner_lr, noise=noise, alpha=alpha),
                         base, base_hyper)
        self.generator = optimizer_generator(generator, self.param_groups)

    def direction(self, closure, params, loss, grads):
        h = self.param_groups[0]
        gamma, eta, alpha = h["gamma"], h["inner_lr"], h["alpha"]
        x = [p.detach().clone() for p in params]
        mu = [t.clone() for t in x]
        scale = math.sqrt(eta) * h["noise"]
        g = grads
        try:
            for step in range(h["inner_steps"]):
                if step > 0:
                    _, g = evaluate(closure, params)
                with torch.no_grad():
                    for p, gi, xi, mi in zip(params, g, x, mu):
                        p.sub_(eta * (gi - gamma * (xi - p)))
                        if scale > 0:
                            p.add_(torch.randn(p.shape, dtype=p.dtype, device=p.device,
                                               generator=self.generator), alpha=scale)
                        mi.mul_(1 - alpha).add_(p, alpha=alpha)
        finally:
            with torch.no_grad():
                for p, xi in zip(params, x):
                    p.copy_(xi)
        return [gamma * (xi - mi) for xi, mi in zip(x, mu)]


def entropy_sgd(params: Iterable[Any], lr: float = 1.0, inner_steps: int = 20,
                gamma: float = 0.03, inner_lr: float = 0.1, noise: float = 1e-4,
                alpha: float = 0.75, generator: torch.Generator | None = None,
                base: str = "sgd", **base_hyper: Any) -> EntropySGD:
    """Entropy-SGD (inner Langevin loop) over a registered base optimizer."""
    return EntropySGD(params, lr=lr, inner_steps=inner_steps, gamma=gamma, inner_lr=inner_lr,
                      noise=noise, alpha=alpha, generator=generator, base=base, **base_hyper)


OPTIMIZERS.register("entropy-sgd", entropy_sgd, papers=(53,),
                    summary="Entropy-SGD: local-entropy gradient from an inner Langevin loop")
