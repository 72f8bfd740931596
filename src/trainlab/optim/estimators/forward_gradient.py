r"""Forward gradients: gradient estimates from forward-mode directional derivatives only.

For a direction :math:`v`, one forward-mode pass (a Jacobian-vector product) gives the
directional derivative :math:`\nabla f \cdot v` without backpropagation. Then

* random directions :math:`v \sim \mathcal N(0, I)` (Baydin et al.):
  :math:`\hat g = (\nabla f \cdot v)\, v` is **unbiased**, :math:`\mathbb E[\hat g] = \nabla f`,
  since :math:`\mathbb E[v v^\top] = I`; ``num_directions`` averages independent draws;
* guessed directions :math:`u` (Fournier et al.; e.g. the gradient of a local auxiliary
  loss): :math:`\hat g = \frac{\nabla f \cdot u}{\|u\|^2}\, u`, the projection of the true
  gradient onto the guess: biased, but its variance does not grow with the dimension and it is
  exact when the guess is aligned.

References:
    Baydin, Pearlmutter, Syme, Wood, Torr. "Gradients without Backpropagation", 2022
    (papers.md row 21). Fournier, Rivaud, Belilovsky, Eickenberg, Oyallon. "Can Forward
    Gradient Match Backpropagation?", ICML 2023 (papers.md row 9).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import jvp

from trainlab.curvature import loss_function, trainable_params
from trainlab.errors import ConfigError, check_range

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ForwardGradient:
    """A forward-gradient estimate.

    Attributes:
        estimate: the gradient estimate, one tensor per parameter name.
        loss: the function value at the parameters.
        derivatives: the directional derivatives ``grad f . v_k``, shape ``(k,)``.
    """

    estimate: Params
    loss: torch.Tensor
    derivatives: torch.Tensor

    def alignment(self, true_grad: Params) -> float:
        """Cosine similarity between the estimate and a reference gradient."""
        a = torch.cat([self.estimate[n].reshape(-1) for n in true_grad])
        b = torch.cat([t.reshape(-1) for t in true_grad.values()])
        return float(a @ b / (a.norm() * b.norm()).clamp_min(torch.finfo(a.dtype).tiny))


def forward_gradient(f: Callable[[Params], torch.Tensor], params: Params, *,
                     num_directions: int = 1, guesses: Sequence[Params] | None = None,
                     generator: torch.Generator | None = None) -> ForwardGradient:
    """Estimate ``grad f(params)`` from forward-mode products (module docstring).

    Deviations from the papers: random directions are standard Gaussian and ``num_directions`` draws
    are averaged (one draw, the default, is row 21's single-direction forward gradient); several
    ``guesses`` are summed as given, not orthonormalized (row 9's guesses come from local auxiliary
    losses, which the caller supplies). The papers' texts were not re-read for this paragraph.

    Args:
        f: scalar function of a parameter dict.
        params: where to differentiate.
        num_directions: number of random Gaussian directions averaged (ignored with
            ``guesses``).
        guesses: guess directions ``u_k`` (parameter dicts); the estimate is the sum of the
            projections onto each (orthonormalize several guesses first for a projection onto
            their span).
        generator: randomness of the random directions.
    """
    if guesses is None:
        check_range("num_directions", num_directions, low=1, owner="forward_gradient")
        dirs = [{n: torch.randn(p.shape, dtype=p.dtype, device=p.device, generator=generator)
                 for n, p in params.items()} for _ in range(num_directions)]
        weights = [1.0 / num_directions] * num_directions
    else:
        if not guesses:
            raise ConfigError("forward_gradient: guesses is empty")
        dirs = list(guesses)
        weights = [1.0 / float(sum((u[n] ** 2).sum() for n in params)) for u in dirs]
    estimate = {n: torch.zeros_like(p) for n, p in params.items()}
    derivs = []
    loss = None
    for v, w in zip(dirs, weights):
        loss, d = jvp(f, (params,), (v,))
        derivs.append(d.detach())
        for n in estimate:
            estimate[n] += (w * d.detach()) * v[n]
    return ForwardGradient(estimate, loss.detach(), torch.stack(derivs))


def model_forward_gradient(model: nn.Module, loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
                           inputs: Any, targets: Any, **kwargs: Any) -> ForwardGradient:
    """:func:`forward_gradient` of a model's batch loss at its current trainable parameters
    (keyword arguments as for :func:`forward_gradient`); ``p.grad`` is not touched.

    Deviations from the papers: those of :func:`forward_gradient`; the function is the model's batch
    loss at its current trainable parameters.
    """
    return forward_gradient(loss_function(model, loss_fn, inputs, targets),
                            trainable_params(model), **kwargs)
