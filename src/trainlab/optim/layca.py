r"""Layca: SGD whose step rotates each layer's weights by a controlled angle (papers.md row 56)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from trainlab.errors import check_choice, check_range
from trainlab.optim._registry import OPTIMIZERS


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


class Layca(torch.optim.Optimizer):
    r"""Layca on SGD (Carbonnelle & De Vleeschouwer, "Layer rotation: a surprisingly
    powerful indicator of generalization in deep networks?", 2019, Sec. 4, and the authors' code;
    papers.md row 56): for each weight tensor with at least 2 dims (weight matrices, conv
    kernels), the gradient step is made into a rotation of angle :math:`\arctan\eta` on the
    sphere of the tensor's norm (:func:`layca_update_`), so that the learning rate sets each
    layer's rotation rate; the norm of each such tensor stays at its initial value.

    Tensors with fewer than 2 dims (biases, normalization scales) have no rotation; the
    authors' code leaves them untouched, which is ``vectors="freeze"``; ``vectors="sgd"``
    (the default) gives them a plain SGD step with the same ``lr``.

    Args:
        params: parameters or param-group dicts (``lr`` and ``vectors`` per group).
        lr: the rotation rate :math:`\eta` per step (radians, for small values), ``>= 0``;
            the paper's default is :math:`3^{-3}`.
        vectors: ``"sgd"`` or ``"freeze"``, what happens to tensors with fewer than 2 dims.
        maximize: ascend instead of descend.

    Deviations: the paper also applies Layca on top of momentum, Adam, RMSprop and Adagrad
    and with per-layer rate multipliers; here plain SGD (the setting of its Sec. 4), and
    per-layer rates go through param groups.
    """

    def __init__(self, params: Iterable[Any], lr: float = 3.0**-3, *, vectors: str = "sgd",
                 maximize: bool = False):
        check_range("lr", lr, low=0.0, owner="layca")
        check_choice("vectors", vectors, ("sgd", "freeze"), owner="layca")
        super().__init__(params, {"lr": lr, "vectors": vectors, "maximize": maximize})
        for group in self.param_groups:
            check_range("lr", group["lr"], low=0.0, owner="layca")
            check_choice("vectors", group["vectors"], ("sgd", "freeze"), owner="layca")

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, sign = group["lr"], (-1.0 if group["maximize"] else 1.0)
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad if sign > 0 else -p.grad
                if p.dim() >= 2:
                    layca_update_(p, g, lr)
                elif group["vectors"] == "sgd":
                    p.sub_(g, alpha=lr)
        return loss


OPTIMIZERS.register("layca", Layca, papers=(56,),
                    summary="SGD turned into a controlled per-layer rotation (Layca)")
