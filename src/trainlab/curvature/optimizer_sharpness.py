"""Optimizer-aware sharpness: the top eigenvalue of P^-1 H for the preconditioner P the
optimizer actually applies, and the edge-of-stability threshold that goes with it."""

from __future__ import annotations

import math
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
        kind: ``"adam"``, ``"ademamix"``, ``"optimistic-amsgrad"``, ``"rmsprop"`` or
            ``"sgd"``.
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


def _moment(state: dict, key: str, name: str, optimizer: torch.optim.Optimizer
            ) -> torch.Tensor:
    if key not in state:
        raise ConfigError(f"{type(optimizer).__name__} has no state for {name!r} yet: measure "
                          "after a step.")
    return state[key]


def _diffgrad_friction(param: torch.Tensor, group: dict, state: dict
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(g, xi)``: the gradient of the coming update (``param.grad`` with the group's sign
    and L2 term, as the optimizer applies them) and its friction :math:`\sigma(|g_{t} -
    g_{t+1}|)` against the stored previous gradient."""
    if param.grad is None:
        raise ConfigError("diffGrad's preconditioner needs the current gradient (p.grad): its "
                          "friction sigmoid(|g_prev - g|) depends on it.")
    g = param.grad.detach()
    if group["maximize"]:
        g = -g
    if group["weight_decay"]:
        g = g + group["weight_decay"] * param.detach()
    return g, torch.sigmoid((state["previous_grad"] - g).abs())


def preconditioner_kind(optimizer: torch.optim.Optimizer) -> str:
    """The family of ``optimizer``'s diagonal preconditioner (see
    :func:`adaptive_denominator`): ``"adam"``, ``"ademamix"``, ``"diffgrad"``,
    ``"optimistic-amsgrad"``, ``"rmsprop"`` or ``"sgd"``.

    Raises:
        ConfigError: an optimizer whose preconditioner is not known here.
    """
    from trainlab.optim.ademamix import AdEMAMix
    from trainlab.optim.diffgrad import DiffGrad
    from trainlab.optim.optimistic_amsgrad import OptimisticAMSGrad
    from trainlab.optim.riemannian_adam import RiemannianAdam

    for cls, kind in ((AdEMAMix, "ademamix"), (DiffGrad, "diffgrad"),
                      (OptimisticAMSGrad, "optimistic-amsgrad"), (RiemannianAdam, "adam"),
                      (torch.optim.Adam, "adam"), (torch.optim.AdamW, "adam"),
                      (torch.optim.RMSprop, "rmsprop"), (torch.optim.SGD, "sgd")):
        if isinstance(optimizer, cls):
            return kind
    raise ConfigError(f"Optimizer-aware sharpness supports torch Adam, AdamW, RMSprop and "
                      f"SGD and trainlab's AdEMAMix, DiffGrad, OptimisticAMSGrad and "
                      f"RiemannianAdam (euclidean groups); the preconditioner of "
                      f"{type(optimizer).__name__} is not known.")


def adaptive_denominator(optimizer: torch.optim.Optimizer, param: torch.Tensor, group: dict,
                         name: str = "") -> tuple[str, torch.Tensor, float]:
    r"""``(kind, D, c)`` such that the optimizer moves ``param`` by :math:`\eta\,u / (c\,D)`
    (elementwise), with :math:`u` its moving average of gradients, :math:`D` the adaptive
    denominator and :math:`c` the bias correction of :math:`u`; the diagonal preconditioner
    is :math:`P = cD` and :math:`\eta / D` the effective per-entry step size.

    * torch ``Adam``/``AdamW``, and trainlab's ``RiemannianAdam`` on a ``"euclidean"``
      group (where it is Adam): :math:`D = \sqrt{v_t/(1-\beta_2^t)} + \epsilon` (``v`` the
      running maximum under AMSGrad), :math:`c = 1-\beta_1^t` (kind ``"adam"``).
    * ``AdEMAMix``: the same :math:`D` and :math:`c` for :math:`\nu` and the fast EMA
      :math:`m_1`; the slow EMA enters the threshold (kind ``"ademamix"``).
    * ``DiffGrad``: of the coming update :math:`t+1`, since the friction of the last one is
      not kept: :math:`D = (\sqrt{v_{t+1}/(1-\beta_2^{t+1})} + \epsilon)/\xi_{t+1}` with
      :math:`v_{t+1} = \beta_2 v_t + (1-\beta_2)g^2` and :math:`\xi_{t+1} =
      \sigma(|g_t - g|)` for the current gradient ``g = p.grad``, :math:`c = 1-\beta_1^{t+1}`
      (kind ``"adam"``: diffGrad's moments are Adam's).
    * ``OptimisticAMSGrad``: :math:`D = \sqrt{\hat v_t} + \epsilon` (running maximum, no
      bias correction), :math:`c = 1` (kind ``"optimistic-amsgrad"``).
    * torch ``RMSprop``: :math:`D = \sqrt{v_t} + \epsilon` (centered:
      :math:`\sqrt{v_t - \bar g_t^2} + \epsilon`), :math:`c = 1`; ``SGD``: :math:`D = 1`.

    Raises:
        ConfigError: an optimizer (or a Riemannian group) without a known diagonal
            preconditioner, or no state yet.
    """
    kind = preconditioner_kind(optimizer)
    state = optimizer.state.get(param, {})
    if group.get("manifold", "euclidean") != "euclidean":
        raise ConfigError(f"RiemannianAdam's preconditioner is diagonal only on 'euclidean' "
                          f"groups; {name!r} is on {group['manifold']!r}.")
    if kind in ("adam", "ademamix"):
        beta1, beta2 = group["betas"][:2]
        v = _moment(state, "max_exp_avg_sq" if group.get("amsgrad") else "exp_avg_sq", name,
                    optimizer)
        t = _step(state)
        return kind, (v / (1 - beta2 ** t)).sqrt() + group["eps"], 1 - beta1 ** t
    if kind == "diffgrad":
        beta1, beta2 = group["betas"]
        v = _moment(state, "exp_avg_sq", name, optimizer)
        t = _step(state) + 1
        g, xi = _diffgrad_friction(param, group, state)
        v_next = beta2 * v + (1 - beta2) * g * g
        return "adam", ((v_next / (1 - beta2 ** t)).sqrt() + group["eps"]) / xi, 1 - beta1 ** t
    if kind == "optimistic-amsgrad":
        v = _moment(state, "max_exp_avg_sq", name, optimizer)
        return kind, v.sqrt() + group["eps"], 1.0
    if kind == "rmsprop":
        v = _moment(state, "square_avg", name, optimizer)
        if group["centered"]:
            v = v - state["grad_avg"].square()
        return kind, v.sqrt() + group["eps"], 1.0
    return kind, torch.ones_like(param), 1.0


def _threshold(kind: str, optimizer: torch.optim.Optimizer, groups: list[dict],
               states: list[dict]) -> float:
    r"""The stability threshold on :math:`\lambda_{max}(P^{-1}H)` (see
    :func:`optimizer_preconditioner`)."""
    lr = float(_uniform(groups, "lr", optimizer))
    if lr == 0.0:  # a step of size 0 is stable at any curvature (e.g. a schedule's last step)
        return math.inf
    if kind in ("adam", "ademamix", "optimistic-amsgrad"):
        beta1 = float(_uniform(groups, "betas", optimizer)[0])
    if kind == "adam":
        return (2 + 2 * beta1) / ((1 - beta1) * lr)
    if kind == "ademamix":
        from trainlab.optim.ademamix import ademamix_alpha, ademamix_beta3

        steps = {_step(s) for s in states}
        if len(steps) != 1:
            raise ConfigError(f"AdEMAMix-aware sharpness needs one step count for all "
                              f"parameters; got {sorted(steps)}.")
        t = steps.pop()
        beta3 = float(_uniform(groups, "betas", optimizer)[2])
        alpha = ademamix_alpha(int(t), float(_uniform(groups, "alpha", optimizer)),
                               _uniform(groups, "alpha_warmup", optimizer))
        b3 = ademamix_beta3(int(t), beta1, beta3, _uniform(groups, "beta3_warmup", optimizer))
        return 2 / (lr * ((1 - beta1) / (1 + beta1)
                          + (1 - beta1 ** t) * alpha * (1 - b3) / (1 + b3)))
    if kind == "optimistic-amsgrad":
        if _uniform(groups, "predictor", optimizer) == "last":
            return (2 + 2 * beta1) / (3 * (1 - beta1) * lr)
        return _zero_guess_edge(beta1) / lr
    mu = float(_uniform(groups, "momentum", optimizer))
    if kind == "rmsprop":
        return (2 + 2 * mu) / lr
    damp = float(_uniform(groups, "dampening", optimizer)) if mu else 0.0
    if mu and _uniform(groups, "nesterov", optimizer):
        return (2 + 2 * mu) / ((1 + 2 * mu) * lr)
    return (2 + 2 * mu) / ((1 - damp) * lr)


def _zero_guess_edge(beta1: float) -> float:
    r"""The smallest :math:`a = \eta\lambda` at which Optimistic-AMSGrad with the zero guess
    (:math:`h_{t+1} = \beta_1 m_{t-1}`) turns unstable on a quadratic with frozen
    :math:`P`: a root of :math:`z^3 - (1+\beta_1-(1-\beta_1)a)z^2 + (\beta_1+k)z - k`,
    :math:`k = \beta_1(1-\beta_1)a`, leaves the unit disc (complex roots cross first when
    :math:`\beta_1 > 1/2`, so there is no closed form). Scanned on a grid, then bisected."""
    def radius(a: float) -> float:
        k = beta1 * (1 - beta1) * a
        coeffs = torch.tensor([1.0, -(1 + beta1 - (1 - beta1) * a), beta1 + k, -k],
                              dtype=torch.float64)
        companion = torch.zeros(3, 3, dtype=torch.float64)
        companion[0] = -coeffs[1:]
        companion[1, 0] = companion[2, 1] = 1.0
        return float(torch.linalg.eigvals(companion).abs().max())

    hi = 4 * (1 + beta1) / (1 - beta1) + 4
    grid = [hi * i / 4000 for i in range(1, 4001)]
    a_hi = next((a for a in grid if radius(a) >= 1.0), None)
    if a_hi is None:
        return math.inf
    a_lo = a_hi - hi / 4000
    for _ in range(50):
        mid = 0.5 * (a_lo + a_hi)
        a_lo, a_hi = (mid, a_hi) if radius(mid) < 1.0 else (a_lo, mid)
    return a_lo


def optimizer_preconditioner(optimizer: torch.optim.Optimizer, model: nn.Module,
                             names: list[str], *, dtype: torch.dtype | None = None
                             ) -> Preconditioner:
    r"""Read the diagonal preconditioner :math:`P = cD` (:func:`adaptive_denominator`) and
    the stability threshold from ``optimizer``: on a quadratic with :math:`P` frozen, the
    iteration is stable while :math:`\lambda_{max}(P^{-1}H)` stays below it (the largest
    :math:`\eta\lambda` at which a root of the linear recurrence of each eigendirection
    reaches :math:`-1`).

    * Adam, AdamW, Riemannian Adam (euclidean), diffGrad: :math:`u` is an exponential moving
      average of gradients: :math:`(2+2\beta_1)/((1-\beta_1)\eta)`, i.e. :math:`38/\eta`
      at :math:`\beta_1 = 0.9` ("Adaptive Gradient Methods at the Edge of Stability",
      Cohen et al. 2022). diffGrad's friction :math:`\xi \in (1/2, 1)` is part of its
      :math:`P`.
    * AdEMAMix (Pagliardini et al. 2024, papers.md row 94): the step
      :math:`\eta(m_1/c + \alpha_t m_2)/D` adds the slow EMA (factor :math:`\beta_{3,t}`)
      with weight :math:`c\,\alpha_t` relative to :math:`P`; the root at :math:`-1` gives
      :math:`2/(\eta[(1-\beta_1)/(1+\beta_1) + c\,\alpha_t(1-\beta_{3,t})/
      (1+\beta_{3,t})])` (Adam's at :math:`\alpha = 0`), with :math:`\alpha_t,
      \beta_{3,t}` at the stored step.
    * Optimistic-AMSGrad (Wang et al., papers.md row 50): gradients are taken at
      :math:`w_t = w_{t-1/2} - \eta h_t/P` with :math:`h_t = \beta_1 m_{t-2} + (1-\beta_1)
      m^{guess}`; with ``predictor="last"`` :math:`h_t = m_{t-1}` and the threshold is
      :math:`(2+2\beta_1)/(3(1-\beta_1)\eta)`; with ``"zero"``, :math:`h_t = \beta_1
      m_{t-2}` and the edge is found numerically (``_zero_guess_edge``).
    * torch ``RMSprop``: heavy-ball momentum :math:`\mu` on the preconditioned gradient:
      :math:`(2+2\mu)/\eta`.
    * torch ``SGD``: :math:`P = I`; :math:`2(1+\mu)/((1-d)\eta)` for momentum :math:`\mu`
      and dampening :math:`d`, and :math:`2(1+\mu)/((1+2\mu)\eta)` with Nesterov (plain GD:
      :math:`2/\eta`, "Gradient descent on neural networks typically occurs at the edge of
      stability", Cohen et al. 2021, papers.md row 10).

    The state is read as stored after the last step (``step = t``: the preconditioner of the
    last update; diffGrad: of the coming one, see :func:`adaptive_denominator`); nothing is
    written. Deviations: weight decay is not folded in (the operator is the loss's
    curvature), and all parameters of the operator must share one learning rate and one set
    of betas.

    Args:
        optimizer: one of the optimizers above.
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
    pieces, kinds = [], set()
    for n, g in zip(names, groups):
        kind, denom, c = adaptive_denominator(optimizer, named[n], g, n)
        kinds.add(kind)
        pieces.append(c * denom)
    states = [optimizer.state.get(named[n], {}) for n in names]
    kind = kinds.pop()
    threshold = _threshold(kind, optimizer, groups, states)
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
