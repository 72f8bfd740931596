r"""Sensitivity of the loss to each input variable from its first, second and third
derivatives, and the rank correlations between the orderings they give.

"Sensitivity Analysis On Loss Landscape" (Salman Faroz, arXiv 2403.01128, 2024; papers.md
row 25) differentiates the loss by automatic differentiation up to third order to find which
independent variables drive the dependent one, and compares what the (second-order)
derivatives show with Spearman's rank correlation between each variable and the target; its
network reads the input vector :math:`x \in \mathbb{R}^n` and returns one real output, with
tanh activations, MSE loss and Xavier initialization, retrained several times.

Two readings are offered, because the paper's method section could not be read (below):

- ``wrt="inputs"`` (default, the papers.md row): for example :math:`i` with per-example
  loss :math:`\ell_i` and input variable :math:`j`, the diagonal derivatives
  :math:`\partial^k \ell_i / \partial x_{ij}^k`, :math:`k = 1, 2, 3`; a variable's
  sensitivity of order :math:`k` is the mean over examples of their absolute values.
- ``wrt="weights"`` (the secondary summary's reading, :math:`\partial L / \partial w_{ij}`):
  the diagonal derivatives of the batch loss :math:`L` with respect to each weight
  :math:`w_{uj}` of the first layer, the one that reads variable :math:`j`; a variable's
  sensitivity is the mean over units :math:`u` of their absolute values. For one tanh unit
  at :math:`w = 0, b = 0` with MSE these are :math:`-2\,\overline{y x_j}`,
  :math:`2\,\overline{x_j^2}` and :math:`4\,\overline{y x_j^3}`: the first is the
  variable-target covariance, which is how derivatives can echo the Spearman ranking.

Both are exact: the :math:`k`-th derivative of :math:`t \mapsto f(z + t e)` at 0 by three
nested forward-mode products (``torch.func.jvp``), batched over basis directions :math:`e`
with ``vmap``. Orderings are compared by Spearman's :math:`\rho` (Pearson correlation of
average ranks, so ties are handled): between orders (1, 2), (1, 3), (2, 3), and, for one real
target per example, between each order's sensitivities and the variables' absolute Spearman
correlation with the target (the paper's comparison).

Sources and uncertainty: only the abstract (arxiv.org/html/2403.01128v2, whose stored copy
ends after the introduction's first paragraph) and third-party summaries (themoonlight.io
review: one-output network, tanh, MSE, AD of the loss "with respect to the weights",
:math:`\partial L/\partial w_{ij}`; linnk.ai: Xavier initialization, a 13-column table, MNIST)
could be read (searched again: the "pages" corpus adds arxivlens, scholarfeed, groovesquid
and a French themoonlight copy, all abstract-level or the same summary); no code by the
author was found. Which derivative the paper ranks by, how it
reduces over examples or units (here: mean absolute value) and whether it uses mixed
derivatives (here: diagonal only) are therefore this module's choices, stated here. The
abstract's "loss function with an activation function" is read as the network's tanh inside
the MSE. Examples must not interact (a BatchNorm layer in training mode is refused).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp, vmap

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.restore import preserved

LossFn = Callable[[torch.Tensor, Any], torch.Tensor]


@dataclass(frozen=True)
class InputDerivatives:
    """Diagonal derivatives of order 1, 2, 3 of the loss, one entry per example and input
    variable (``wrt="inputs"``: ``(n, V)``, per-example loss) or per first-layer unit and
    input variable (``wrt="weights"``: ``(units, V)``, batch loss); ``V`` is the number of
    input variables (the input shape flattened)."""

    d1: torch.Tensor
    d2: torch.Tensor
    d3: torch.Tensor

    def scores(self) -> torch.Tensor:
        """``(3, V)``: mean over rows (examples or units) of the absolute derivative of
        order 1, 2, 3."""
        return torch.stack([self.d1.abs().mean(0), self.d2.abs().mean(0),
                            self.d3.abs().mean(0)])


def rankdata(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of a 1-D tensor, ties given their average rank (scipy's ``"average"``)."""
    order = torch.argsort(x, stable=True)
    xs = x[order]
    ranks = torch.empty_like(x, dtype=torch.float64)
    n = len(x)
    new_group = torch.ones(n, dtype=torch.bool)
    new_group[1:] = xs[1:] != xs[:-1]
    starts = torch.nonzero(new_group).flatten().tolist() + [n]
    for i in range(len(starts) - 1):
        a, b = starts[i], starts[i + 1]
        ranks[order[a:b]] = (a + b + 1) / 2.0
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation of two 1-D tensors (NaN when either is constant)."""
    if a.shape != b.shape or a.dim() != 1 or len(a) < 2:
        raise ConfigError("spearman: a and b must be 1-D tensors of the same length >= 2. "
                          f"Got shapes {tuple(a.shape)} and {tuple(b.shape)} instead.")
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return (ra @ rb) / (ra.norm() * rb.norm())


def _diagonal_derivatives(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
                          count: int, basis: Callable[[torch.Tensor], torch.Tensor],
                          chunk: int) -> tuple[torch.Tensor, ...]:
    """``(d1, d2, d3)``, each ``(count, *f(z).shape)``: the derivatives of order 1-3 of
    ``t -> f(z + t e_c)`` at 0 for the directions ``e_c = basis(c)``, ``c < count`` (built
    ``chunk`` at a time from a tensor of indices), by nested ``jvp``."""

    def derivs(e: torch.Tensor) -> tuple[torch.Tensor, ...]:
        def f1(zz):
            return jvp(f, (zz,), (e,))

        def f2(zz):
            (l0, l1), (_, l2) = jvp(f1, (zz,), (e,))
            return l0, l1, l2

        (_, l1, l2), (_, _, l3) = jvp(f2, (z,), (e,))
        return l1, l2, l3

    parts = [vmap(derivs, randomness="same")(basis(torch.arange(i, min(i + chunk, count))))
             for i in range(0, count, chunk)]
    return tuple(torch.cat([p[k] for p in parts]).detach() for k in range(3))


def _check_independent(model: nn.Module, inputs: torch.Tensor) -> None:
    if not torch.is_floating_point(inputs):
        raise ConfigError("input_derivatives: inputs must be floating point (got "
                          f"{inputs.dtype}); derivatives in discrete inputs are undefined.")
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
            raise ConfigError("input_derivatives: a BatchNorm layer in training mode couples "
                              "the examples of a batch; put the model in eval mode")


def first_layer_weight(model: nn.Module, num_variables: int) -> str:
    """Name of the first 2-D trainable parameter with ``num_variables`` columns: the weight
    matrix that reads the (flattened) input variables."""
    for name, p in model.named_parameters():
        if p.requires_grad and p.dim() == 2 and p.shape[1] == num_variables:
            return name
    raise ConfigError(f"input_derivatives: wrt='weights' needs a 2-D weight with "
                      f"{num_variables} columns (one per input variable); the model has none")


def input_derivatives(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor,
                      targets: Any, *, wrt: str = "inputs", chunk: int = 64
                      ) -> InputDerivatives:
    r"""Diagonal derivatives of order 1-3 of the loss, for each input variable, at the
    model's parameters and mode (``chunk`` basis directions per ``vmap`` call).

    ``wrt="inputs"``: of each example's loss with respect to each of its input variables
    (``loss_fn`` must be the mean of per-example losses; it is called on one example at a
    time). ``wrt="weights"``: of the batch loss with respect to each weight of the first
    layer reading the inputs (:func:`first_layer_weight`). The model, its ``.grad`` and the
    global RNG are left as found.

    Deviations from the paper: see the module docstring (its method section could not be read; the
    two readings ``wrt``, the mean of absolute values over examples or units and the diagonal-only
    derivatives are this module's stated choices).
    """
    check_range("chunk", chunk, low=1, owner="input_derivatives")
    check_choice("wrt", wrt, ("inputs", "weights"), owner="input_derivatives")
    _check_independent(model, inputs)
    x = inputs.detach()
    n, v = x.shape[0], x[0].numel()
    with preserved(model), torch.enable_grad():
        if wrt == "inputs":
            def losses(xx: torch.Tensor) -> torch.Tensor:
                out = model(xx)
                return vmap(lambda o, t: loss_fn(o.unsqueeze(0), t.unsqueeze(0)))(out, targets)

            def unit_inputs(idx: torch.Tensor) -> torch.Tensor:
                e = F.one_hot(idx, v).to(dtype=x.dtype, device=x.device)
                return e.reshape(len(idx), 1, *x.shape[1:]).expand(len(idx), n, *x.shape[1:])

            d = _diagonal_derivatives(losses, x, v, unit_inputs, chunk)
            return InputDerivatives(*(t.T for t in d))
        name = first_layer_weight(model, v)
        params = {k: p.detach() for k, p in model.named_parameters()}
        buffers = {k: b.detach() for k, b in model.named_buffers()}
        w = params[name]

        def batch_loss(ww: torch.Tensor) -> torch.Tensor:
            out = functional_call(model, ({**params, name: ww}, buffers), (x,))
            return loss_fn(out, targets)

        def unit_weights(idx: torch.Tensor) -> torch.Tensor:
            e = F.one_hot(idx, w.numel()).to(dtype=w.dtype, device=w.device)
            return e.reshape(len(idx), *w.shape)

        d = _diagonal_derivatives(batch_loss, w, w.numel(), unit_weights, chunk)
        return InputDerivatives(*(t.reshape(w.shape) for t in d))
