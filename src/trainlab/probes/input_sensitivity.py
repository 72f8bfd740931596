r"""Sensitivity of the loss to each input variable from its first, second and third
derivatives, and the rank correlations between the orderings they give.

"Sensitivity Analysis On Loss Landscape" (Faroz, 2024; papers.md row 25) differentiates the
loss with respect to the input variables by automatic differentiation up to third order and
ranks the variables by each derivative, comparing the orderings with the Spearman rank
correlation between each variable and the target.

For example :math:`i` with per-example loss :math:`\ell_i` and input variable :math:`j`, this
module computes the diagonal derivatives :math:`\partial^k \ell_i / \partial x_{ij}^k` for
:math:`k = 1, 2, 3` exactly, as the derivatives of :math:`t \mapsto \ell_i(x_i + t e_j)` at
0 by three nested forward-mode products (``torch.func.jvp``), batched over variables with
``vmap``. A variable's sensitivity of order :math:`k` is the mean over examples of
:math:`|\partial^k \ell_i / \partial x_{ij}^k|`; orderings are compared by Spearman's
:math:`\rho` (Pearson correlation of average ranks, so ties are handled).

Deviations: only the abstract and secondary summaries of the paper could be read; the
reduction over examples (mean absolute value) and the choice of diagonal (not mixed)
derivatives are this module's, stated here. The comparison with the variable-target Spearman
correlation is made when the targets are one real number per example (regression).
Examples must not interact (a BatchNorm layer in training mode is refused).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import jvp, vmap

from trainlab.errors import ConfigError, check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes._restore import preserved

LossFn = Callable[[torch.Tensor, Any], torch.Tensor]
PAIRS = ((1, 2), (1, 3), (2, 3))


@dataclass(frozen=True)
class InputDerivatives:
    """Per-example diagonal input derivatives of the per-example loss, each ``(n, V)`` with
    ``V`` the number of input variables (the input shape flattened)."""

    d1: torch.Tensor
    d2: torch.Tensor
    d3: torch.Tensor

    def scores(self) -> torch.Tensor:
        """``(3, V)``: mean over examples of the absolute derivative of order 1, 2, 3."""
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


def input_derivatives(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor,
                      targets: Any, *, chunk: int = 64) -> InputDerivatives:
    r"""Diagonal derivatives of order 1-3 of each example's loss with respect to each of its
    input variables, at the model's parameters and mode (``chunk`` variables per ``vmap``
    call). The loss must be the mean of per-example losses; the model, its ``.grad`` and the
    global RNG are left as found."""
    check_range("chunk", chunk, low=1, owner="input_derivatives")
    if not torch.is_floating_point(inputs):
        raise ConfigError("input_derivatives: inputs must be floating point (got "
                          f"{inputs.dtype}); derivatives in discrete inputs are undefined.")
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
            raise ConfigError("input_derivatives: a BatchNorm layer in training mode couples "
                              "the examples of a batch; put the model in eval mode")
    n = inputs.shape[0]
    v = inputs[0].numel()
    x = inputs.detach()

    def losses(xx: torch.Tensor) -> torch.Tensor:
        out = model(xx)
        return vmap(lambda o, t: loss_fn(o.unsqueeze(0), t.unsqueeze(0)))(out, targets)

    def derivs(e: torch.Tensor) -> tuple[torch.Tensor, ...]:
        def f1(xx):
            return jvp(losses, (xx,), (e,))

        def f2(xx):
            (l0, l1), (_, l2) = jvp(f1, (xx,), (e,))
            return l0, l1, l2

        (_, l1, l2), (_, _, l3) = jvp(f2, (x,), (e,))
        return l1, l2, l3

    eye = torch.eye(v, dtype=x.dtype, device=x.device)
    parts: list[tuple[torch.Tensor, ...]] = []
    with preserved(model), torch.enable_grad():
        for i in range(0, v, chunk):
            basis = eye[i:i + chunk].reshape(-1, 1, *inputs.shape[1:]).expand(
                -1, n, *inputs.shape[1:])
            parts.append(vmap(derivs, randomness="same")(basis))
    d1, d2, d3 = (torch.cat([p[k] for p in parts]).T.detach() for k in range(3))
    return InputDerivatives(d1, d2, d3)


def rank_correlations(scores: torch.Tensor) -> dict[str, torch.Tensor]:
    """Spearman correlations between the orderings of order ``(1,2)``, ``(1,3)``, ``(2,3)``."""
    return {f"{a}{b}": spearman(scores[a - 1], scores[b - 1]) for a, b in PAIRS}


def target_correlations(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(V,)``: Spearman correlation of each input variable with a real target."""
    x = inputs.reshape(len(inputs), -1)
    y = targets.reshape(-1)
    return torch.stack([spearman(x[:, j].double(), y.double()) for j in range(x.shape[1])])


class InputSensitivity(Probe):
    """``sensitivity/rank_corr_12``, ``_13``, ``_23`` (Spearman correlation between the
    variable orderings by first, second and third derivative), ``sensitivity/d<k>_mean``
    (mean sensitivity of order k over variables), ``sensitivity/d<k>_top`` (index of the most
    sensitive variable) and, for one real target per example,
    ``sensitivity/target_corr_<k>`` (Spearman correlation between the order-k sensitivities
    and the variables' absolute rank correlation with the target, the paper's comparison).
    Nothing for non-float inputs.

    Args:
        every: cadence.
        max_examples: examples of the batch used (the first ones).
        chunk: input variables per vectorized call.
    """

    name = "input-sensitivity"

    def __init__(self, every: int = 1, max_examples: int = 64, chunk: int = 64):
        super().__init__(every)
        check_range("max_examples", max_examples, low=1, owner="input-sensitivity")
        check_range("chunk", chunk, low=1, owner="input-sensitivity")
        self.max_examples, self.chunk = max_examples, chunk

    def measure(self, ctx: ProbeContext) -> Measurement:
        x, y = ctx.batch
        if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x) or x[0].numel() < 2:
            return {}
        x, y = x[:self.max_examples], y[:self.max_examples]
        scores = input_derivatives(ctx.model, ctx.loss_fn, x, y, chunk=self.chunk).scores()
        out: Measurement = {f"sensitivity/rank_corr_{k}": v
                            for k, v in rank_correlations(scores).items()}
        for k in range(3):
            out[f"sensitivity/d{k + 1}_mean"] = scores[k].mean()
            out[f"sensitivity/d{k + 1}_top"] = float(scores[k].argmax())
        if (isinstance(y, torch.Tensor) and torch.is_floating_point(y) and y.numel() == len(x)
                and len(x) >= 2):
            rho = target_correlations(x, y).abs()
            if bool(torch.isfinite(rho).all()):
                for k in range(3):
                    out[f"sensitivity/target_corr_{k + 1}"] = spearman(scores[k].double(), rho)
        return {k: v for k, v in out.items()
                if not (isinstance(v, torch.Tensor) and not bool(torch.isfinite(v)))}


PROBES.register("input-sensitivity", InputSensitivity, papers=(25,),
                summary="first/second/third input-derivative sensitivity of the loss per "
                        "input variable, with rank correlations between the orderings")
