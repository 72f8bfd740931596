"""Optimizer-aware sharpness: the top eigenvalue of P^-1 H for the preconditioner P the
optimizer actually applies, and the edge-of-stability threshold that goes with it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainlab.curvature.operators._curvature import CurvatureOperator
from trainlab.curvature.operators.preconditioned import PreconditionedOperator
from trainlab.curvature.solvers.lanczos import lanczos
from trainlab.curvature.solvers.results import EigenResult
from trainlab.errors import ConfigError


@dataclass(frozen=True)
class Preconditioner:
    """The diagonal preconditioner of an optimizer and its stability threshold.

    Attributes:
        diag: ``(dim,)`` diagonal of ``P`` in the operator's parameter layout.
        threshold: the largest stable eigenvalue of :math:`P^{-1}H` on a quadratic.
        kind: ``"adam"``, ``"rmsprop"`` or ``"sgd"``.
    """

    diag: torch.Tensor
    threshold: float
    kind: str


@dataclass(frozen=True)
class PreconditionedSharpness:
    """:math:`\\lambda_{max}(P^{-1}H)`, its threshold, their ratio, and the Lanczos result
    (eigenvectors of the symmetrized :math:`P^{-1/2}HP^{-1/2}`, reusable as ``v0``)."""

    value: float
    threshold: float
    ratio: float
    kind: str
    eigen: EigenResult


def _uniform(groups: list[dict], key: str, optimizer: torch.optim.Optimizer):
    values = {repr(g[key]) for g in groups}
    if len(values) != 1:
        raise ConfigError(f"Optimizer-aware sharpness needs one {key!r} for all parameters of "
                          f"the operator; {type(optimizer).__name__} has {sorted(values)}.")
    return groups[0][key]


def _step(state: dict) -> float:
    step = state["step"]
    return float(step.item() if isinstance(step, torch.Tensor) else step)


def optimizer_preconditioner(optimizer: torch.optim.Optimizer, model: nn.Module,
                             names: list[str], *, dtype: torch.dtype | None = None
                             ) -> Preconditioner:
    r"""Read the diagonal preconditioner :math:`P` and stability threshold from ``optimizer``.

    * ``torch.optim.Adam`` / ``AdamW``: torch's step is
      :math:`\theta \mathrel{-}= \eta\, m_t / [(1-\beta_1^t)(\sqrt{v_t}/\sqrt{1-\beta_2^t}
      + \epsilon)]`, so :math:`P = (1-\beta_1^t)(\sqrt{\hat v_t} + \epsilon)` (with
      ``max_exp_avg_sq`` under AMSGrad), and :math:`m_t` is an exponential moving average of
      gradients: on a quadratic with frozen :math:`P` the iteration is stable while
      :math:`\lambda_{max}(P^{-1}H) < (2+2\beta_1)/((1-\beta_1)\eta)`, i.e. :math:`38/\eta`
      at :math:`\beta_1 = 0.9` ("Adaptive Gradient Methods at the Edge of Stability", Cohen
      et al. 2022).
    * ``torch.optim.RMSprop``: :math:`P = \sqrt{v_t} + \epsilon` (centered:
      :math:`\sqrt{v_t - \bar g_t^2} + \epsilon`), no bias correction; heavy-ball momentum
      :math:`\mu` on the preconditioned gradient: threshold :math:`(2+2\mu)/\eta`.
    * ``torch.optim.SGD``: :math:`P = I`; threshold :math:`2(1+\mu)/((1-d)\eta)` for
      momentum :math:`\mu` and dampening :math:`d`, and :math:`2(1+\mu)/((1+2\mu)\eta)` with
      Nesterov (plain GD: :math:`2/\eta`, "Gradient descent on neural networks typically
      occurs at the edge of stability", Cohen et al. 2021, papers.md row 10).

    The state is read as stored after the last step (``step = t``); nothing is written.
    Deviations: weight decay is not folded in (the operator is the loss's curvature), and
    all parameters of the operator must share one learning rate and one set of betas.

    Args:
        optimizer: a torch Adam, AdamW, RMSprop or SGD instance.
        model: the model whose parameters the optimizer updates.
        names: parameter names in the operator's layout (``list(op.params)``).
        dtype: dtype of the returned diagonal (default: the parameters').

    Raises:
        ConfigError: unsupported optimizer, no state yet (before the first step), or
            parameters of the operator that the optimizer does not update.
    """
    named = dict(model.named_parameters())
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    missing = [n for n in names if id(named.get(n)) not in group_of]
    if missing:
        raise ConfigError(f"The optimizer does not update the parameters {missing}.")
    groups = [group_of[id(named[n])] for n in names]
    lr = float(_uniform(groups, "lr", optimizer))
    pieces: list[torch.Tensor] = []
    if isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        kind = "adam"
        beta1, beta2 = _uniform(groups, "betas", optimizer)
        threshold = (2 + 2 * beta1) / ((1 - beta1) * lr)
        for n, g in zip(names, groups):
            st = optimizer.state.get(named[n], {})
            if "exp_avg_sq" not in st:
                raise ConfigError(f"Adam has no state for {n!r} yet: measure after a step.")
            t = _step(st)
            v = st["max_exp_avg_sq"] if g["amsgrad"] else st["exp_avg_sq"]
            denom = v.sqrt() / (1 - beta2 ** t) ** 0.5 + g["eps"]
            pieces.append((1 - beta1 ** t) * denom)
    elif isinstance(optimizer, torch.optim.RMSprop):
        kind = "rmsprop"
        mu = float(_uniform(groups, "momentum", optimizer))
        threshold = (2 + 2 * mu) / lr
        for n, g in zip(names, groups):
            st = optimizer.state.get(named[n], {})
            if "square_avg" not in st:
                raise ConfigError(f"RMSprop has no state for {n!r} yet: measure after a step.")
            v = st["square_avg"]
            if g["centered"]:
                v = v - st["grad_avg"].square()
            pieces.append(v.sqrt() + g["eps"])
    elif isinstance(optimizer, torch.optim.SGD):
        kind = "sgd"
        mu = float(_uniform(groups, "momentum", optimizer))
        damp = float(_uniform(groups, "dampening", optimizer)) if mu else 0.0
        if mu and _uniform(groups, "nesterov", optimizer):
            threshold = (2 + 2 * mu) / ((1 + 2 * mu) * lr)
        else:
            threshold = (2 + 2 * mu) / ((1 - damp) * lr)
        pieces = [torch.ones_like(named[n]) for n in names]
    else:
        raise ConfigError(f"Optimizer-aware sharpness supports torch Adam, AdamW, RMSprop and "
                          f"SGD; got {type(optimizer).__name__}.")
    diag = torch.cat([p.detach().reshape(-1) for p in pieces])
    return Preconditioner(diag.to(dtype) if dtype is not None else diag, threshold, kind)


def preconditioned_sharpness(
    op: CurvatureOperator,
    optimizer: torch.optim.Optimizer,
    *,
    tol: float = 1e-3,
    max_iter: int | None = None,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PreconditionedSharpness:
    r""":math:`\lambda_{max}(P^{-1}H)` by Lanczos on :math:`P^{-1/2}HP^{-1/2}`, with ``P`` read
    from ``optimizer`` (:func:`optimizer_preconditioner`) and its stability threshold.

    ``ratio = value / threshold`` is 1 at the (adaptive) edge of stability. Pass the
    previous result's ``eigen.vectors`` as ``v0`` to warm-start inside a training loop.
    ``tol`` is Lanczos' relative residual tolerance.
    """
    pre = optimizer_preconditioner(optimizer, op.model, list(op.params), dtype=op.dtype)
    eig = lanczos(PreconditionedOperator(op, pre.diag), k=1, which="LA", tol=tol,
                  max_iter=max_iter, v0=v0, generator=generator)
    value = eig.values[0].item()
    return PreconditionedSharpness(value, pre.threshold, value / pre.threshold, pre.kind, eig)
