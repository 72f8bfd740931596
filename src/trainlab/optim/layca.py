r"""Layca: a base optimizer's step turned into a controlled per-layer rotation (papers.md
row 56)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from trainlab.errors import check_betas, check_choice, check_range
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim._stateful import StatefulOptimizer

BASES = ("sgd", "momentum", "rmsprop", "adam", "adagrad")
VECTOR_RULES = ("step", "freeze")


def layca_update_(w: torch.Tensor, step: torch.Tensor, lr: float) -> None:
    r"""One Layca update of one weight tensor, in place: the step is projected on the tangent
    space of the sphere of radius :math:`\|w\|`, rescaled to length :math:`\|w\|`, taken
    with rate ``lr``, and the weights are put back on the sphere,

    .. math::
        s_\perp = s - \frac{\langle s, w\rangle}{\|w\|^2} w,\qquad
        w' = w - \eta\,\|w\|\,\frac{s_\perp}{\|s_\perp\|},\qquad
        w \leftarrow \frac{\|w\|}{\|w'\|}\,w',

    so every update turns ``w`` by the angle :math:`\arctan\eta` and keeps its norm. A step
    with no tangent part (:math:`\|s_\perp\| = 0`) leaves ``w`` as it is.
    """
    norm = torch.linalg.vector_norm(w)
    tangent = step - (step * w).sum() / norm.square() * w
    t_norm = torch.linalg.vector_norm(tangent)
    if t_norm.item() <= 0.0 or norm.item() <= 0.0:
        return
    w.sub_(tangent, alpha=lr * (norm / t_norm).item())
    w.mul_(norm / torch.linalg.vector_norm(w))


def base_direction_(g: torch.Tensor, state: dict[str, Any],
                    group: dict[str, Any]) -> tuple[torch.Tensor, float]:
    r"""The base optimizer's step direction for gradient ``g`` (its buffers in ``state``
    updated in place) and the factor that turns the direction into that optimizer's own step
    (``lr`` included):

    - ``sgd``: :math:`d = g`;
    - ``momentum``: :math:`b \leftarrow \mu b + g` (:math:`b_1 = g_1`), :math:`d = b`, or
      :math:`d = g + \mu b` with Nesterov;
    - ``rmsprop``: :math:`a \leftarrow \rho a + (1-\rho) g^2`,
      :math:`d = g / (\sqrt a + \epsilon)`;
    - ``adam``: :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
      :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2` (AMSGrad: the running maximum of
      :math:`v`), :math:`d = m / (\sqrt v + \epsilon)`, own step
      :math:`\eta \sqrt{1-\beta_2^t} / (1-\beta_1^t)\, d`;
    - ``adagrad``: :math:`a \leftarrow a + g^2`, :math:`d = g / (\sqrt a + \epsilon)`.

    These are the authors' formulas for the optimizers they wrap (their step before Layca,
    with :math:`\epsilon` outside Adam's bias correction as there).
    """
    base, lr = group["base"], group["lr"]
    if base == "sgd":
        return g, lr
    if base == "momentum":
        mu = group["momentum"]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = g.clone()
        else:
            state["momentum_buffer"].mul_(mu).add_(g)
        buf = state["momentum_buffer"]
        return (g + mu * buf if group["nesterov"] else buf), lr
    if base == "rmsprop":
        a = state.setdefault("square_avg", torch.zeros_like(g))
        a.mul_(group["alpha"]).addcmul_(g, g, value=1.0 - group["alpha"])
        return g / (a.sqrt() + group["eps"]), lr
    if base == "adagrad":
        a = state.setdefault("sum", torch.zeros_like(g))
        a.addcmul_(g, g)
        return g / (a.sqrt() + group["eps"]), lr
    beta1, beta2 = group["betas"]
    m = state.setdefault("exp_avg", torch.zeros_like(g))
    v = state.setdefault("exp_avg_sq", torch.zeros_like(g))
    m.lerp_(g, 1.0 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
    if group["amsgrad"]:
        v_max = state.setdefault("max_exp_avg_sq", torch.zeros_like(g))
        torch.maximum(v_max, v, out=v_max)
        v = v_max
    t = state["step"]
    return m / (v.sqrt() + group["eps"]), lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)


class Layca(StatefulOptimizer):
    r"""Layca (Carbonnelle & De Vleeschouwer, "Layer rotation: a surprisingly powerful
    indicator of generalization in deep networks?", 2019, Sec. 4, and the authors' code;
    papers.md row 56): for each weight tensor with at least 2 dims (weight matrices, conv
    kernels), the step a base optimizer would take (:func:`base_direction_`: SGD, SGD with
    momentum, RMSprop, Adam or Adagrad, the optimizers the paper wraps) is made into a
    rotation of angle :math:`\arctan\eta` on the sphere of the tensor's norm
    (:func:`layca_update_`), so that the learning rate sets each layer's rotation rate; the
    norm of each such tensor stays at its initial value.

    Tensors with fewer than 2 dims (biases, normalization scales) have no rotation; the
    authors' code leaves them untouched, which is ``vectors="freeze"``; ``vectors="step"``
    (the default) gives them the base optimizer's own step with the same ``lr``.

    Args:
        params: parameters or param-group dicts (every keyword below can be set per group).
        lr: the rotation rate :math:`\eta` per step (radians, for small values), ``>= 0``;
            the paper's default is :math:`3^{-3}`.
        base: ``"sgd"`` (default), ``"momentum"``, ``"rmsprop"``, ``"adam"`` or ``"adagrad"``.
        momentum: :math:`\mu` of ``base="momentum"``, in ``[0, 1)``; ``nesterov`` its
            Nesterov form.
        alpha: RMSprop's smoothing constant :math:`\rho`.
        betas: Adam's :math:`(\beta_1, \beta_2)`; ``amsgrad`` its AMSGrad form.
        eps: :math:`\epsilon` of RMSprop, Adam and Adagrad (the authors' Keras default 1e-7).
        vectors: ``"step"`` or ``"freeze"``, what happens to tensors with fewer than 2 dims.
        maximize: ascend instead of descend.

    A hyperparameter that the group's ``base`` does not use (say ``betas`` with ``sgd``) is
    validated and kept in the group but has no effect.

    Deviations: the authors' momentum keeps the velocity :math:`v \leftarrow \mu v - \eta g`
    (learning rate inside the buffer); here torch's convention (:math:`b \leftarrow \mu b +
    g`), which gives the same direction at a constant rate and, because Layca normalises the
    step, differs only while the rate changes. Per-layer rate multipliers go through param
    groups. Keras' defaults (RMSprop :math:`\rho = 0.9`, :math:`\epsilon = 10^{-7}`) are kept.
    """

    def __init__(self, params: Iterable[Any], lr: float = 3.0**-3, *, base: str = "sgd",
                 momentum: float = 0.9, nesterov: bool = False, alpha: float = 0.9,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-7,
                 amsgrad: bool = False, vectors: str = "step", maximize: bool = False):
        defaults = {"lr": lr, "base": base, "momentum": momentum, "nesterov": nesterov,
                    "alpha": alpha, "betas": betas, "eps": eps, "amsgrad": amsgrad,
                    "vectors": vectors, "maximize": maximize}
        super().__init__(params, defaults)
        for group in self.param_groups:
            check_range("lr", group["lr"], low=0.0, owner="layca")
            check_choice("base", group["base"], BASES, owner="layca")
            check_range("momentum", group["momentum"], low=0.0, high=1.0, high_open=True,
                        owner="layca")
            check_range("alpha", group["alpha"], low=0.0, high=1.0, high_open=True,
                        owner="layca")
            group["betas"] = check_betas(group["betas"], 2, owner="layca")
            check_range("eps", group["eps"], low=0.0, owner="layca")
            check_choice("vectors", group["vectors"], VECTOR_RULES, owner="layca")

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {}  # the base's buffers are made on first use (momentum_buffer, exp_avg, ...)

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor], states: list[dict[str, Any]]) -> None:
        for p, g, state in zip(params, grads, states, strict=True):
            if group["maximize"]:
                g = torch.neg(g)
            if p.dim() < 2 and group["vectors"] == "freeze":
                continue
            direction, own_rate = base_direction_(g, state, group)
            if p.dim() >= 2:
                layca_update_(p, direction, group["lr"])
            else:
                p.sub_(direction, alpha=own_rate)


OPTIMIZERS.register("layca", Layca, papers=(56,),
                    summary="a base optimizer's step turned into a controlled per-layer "
                            "rotation (Layca)")
