r"""PSGD: preconditioned SGD with a Lie-group preconditioner fitted from Hessian-vector pairs.

Each step draws a probe :math:`v \sim \mathcal N(0, I)` and its curvature response
:math:`h = H v` (the closure's exact ``hvp``, else a finite difference of two gradients, as
in the paper) and moves the preconditioner :math:`P = Q^\top Q` one normalized step down the
criterion :math:`c(P) = \mathbb E[h^\top P h + v^\top P^{-1} v]`, whose minimizer is
:math:`P = (H^2)^{-1/2}` (:math:`= H^{-1}` for positive-definite :math:`H`). :math:`Q` stays in
a Lie group, so it never becomes singular:

* ``"kron"`` (matrices, and tensors reshaped to ``(shape[0], -1)``): :math:`Q = Q_r \otimes
  Q_l` with upper-triangular factors; with :math:`A = Q_l H Q_r^\top`,
  :math:`B = Q_l^{-\top} V Q_r^{-1}`:
  :math:`Q_l \leftarrow Q_l - \frac{\mu}{\|AA^\top + BB^\top\|_{\max}}\,
  \mathrm{triu}(AA^\top - BB^\top) Q_l` and likewise :math:`Q_r` with :math:`A^\top A, B^\top B`;
* ``"diag"`` (vectors, scalars, and any tensor when ``preconditioner="diag"``):
  :math:`q \leftarrow q - \frac{\mu}{\max(a^2 + b^2)}(a^2 - b^2)\, q`, :math:`a = q h`,
  :math:`b = v / q`.

The parameter update is :math:`w \leftarrow w - \eta\, m`, where :math:`m` is an exponential
moving average (``momentum``) of the preconditioned gradient :math:`P g`.

References:
    Xi-Lin Li, "Preconditioned Stochastic Gradient Descent", IEEE TNNLS 2018, and
    Pooladzandi & Li, "Curvature-Informed SGD via General Purpose Lie-Group Preconditioners",
    2024 (papers.md row 29). Defaults: preconditioner step 0.1, preconditioner update every
    step, Q initialized to the identity times ``init_scale``.

Deviations from the paper:
    The low-rank-approximation (LRA/UVd) preconditioner is a sibling optimizer,
    :mod:`trainlab.optim.psgd_lra` (``psgd-lra``); Kronecker
    factors are applied to tensors up to ``max_kron_dim`` per side, larger sides fall back to
    the diagonal preconditioner. The update of ``Q`` uses the Newton-type (Hessian-vector)
    criterion only, not the gradient-whitening variant. The Kronecker factors' step is
    normalised by the largest absolute entry of :math:`AA^\top + BB^\top`; the authors'
    current code (lixilinx/psgd_torch) normalises by a lower bound of its spectral norm, which
    is at least as large, so steps here can be larger on big factors (the diagonal rule
    matches theirs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch

from trainlab.errors import check_choice, check_range
from trainlab.optim._generator import DrawsRandom, optimizer_generator
from trainlab.optim._outer import ClosureOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.loss_closure import hessian_vector_product, set_grads

KINDS = ("kron", "diag")


def update_kron_(ql: torch.Tensor, qr: torch.Tensor, v: torch.Tensor, h: torch.Tensor,
                 step: float) -> None:
    """One normalized Lie-group step of the Kronecker factors from the pair ``(v, h)``."""
    a = ql @ h @ qr.T
    b = torch.linalg.solve_triangular(ql.T, v, upper=False)          # Ql^{-T} V
    b = torch.linalg.solve_triangular(qr, b, upper=True, left=False)  # ... Qr^{-1}
    aat, bbt = a @ a.T, b @ b.T
    ata, btb = a.T @ a, b.T @ b
    tiny = torch.finfo(v.dtype).tiny
    ql.sub_(step / ((aat + bbt).abs().max() + tiny) * torch.triu(aat - bbt) @ ql)
    qr.sub_(step / ((ata + btb).abs().max() + tiny) * torch.triu(ata - btb) @ qr)


def update_diag_(q: torch.Tensor, v: torch.Tensor, h: torch.Tensor, step: float) -> None:
    """One normalized Lie-group step of the diagonal preconditioner ``q`` (P = q^2)."""
    a2, b2 = (q * h) ** 2, (v / q) ** 2
    q.sub_(step / ((a2 + b2).max() + torch.finfo(v.dtype).tiny) * (a2 - b2) * q)


class PSGD(DrawsRandom, ClosureOptimizer):
    """PSGD with Kronecker-factored or diagonal Lie-group preconditioners (module docstring).

    Args:
        params: parameters or param groups.
        lr: step size of the parameters, >= 0.
        momentum: EMA factor of the preconditioned gradient, in [0, 1).
        precond_lr: normalized step of the preconditioner fit, in (0, 1].
        preconditioner: ``"kron"`` (matrices Kronecker, vectors diagonal) or ``"diag"``.
        init_scale: initial ``Q = init_scale * I``.
        max_kron_dim: largest side given a dense triangular factor.
        generator: randomness of the probe vectors ``v``.
    """

    stochastic = True

    def __init__(self, params: Iterable[Any], lr: float = 0.02, momentum: float = 0.9,
                 precond_lr: float = 0.1, preconditioner: Literal["kron", "diag"] = "kron",
                 init_scale: float = 1.0, max_kron_dim: int = 1024,
                 generator: torch.Generator | None = None):
        check_range("lr", lr, low=0.0, owner="PSGD")
        check_range("momentum", momentum, low=0.0, high=1.0, high_open=True, owner="PSGD")
        check_range("precond_lr", precond_lr, low=0.0, high=1.0, low_open=True, owner="PSGD")
        check_range("init_scale", init_scale, low=0.0, low_open=True, owner="PSGD")
        check_choice("preconditioner", preconditioner, KINDS, owner="PSGD")
        super().__init__(params, dict(lr=lr, momentum=momentum, precond_lr=precond_lr,
                                      preconditioner=preconditioner, init_scale=init_scale,
                                      max_kron_dim=max_kron_dim))
        self.generator = optimizer_generator(generator, self.param_groups)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            m = p.reshape(p.shape[0], -1) if p.ndim >= 2 else p.reshape(-1)
            kron = (group["preconditioner"] == "kron" and p.ndim >= 2
                    and max(m.shape) <= group["max_kron_dim"])
            s = group["init_scale"]
            if kron:
                state["ql"] = s ** 0.5 * torch.eye(m.shape[0], dtype=p.dtype, device=p.device)
                state["qr"] = s ** 0.5 * torch.eye(m.shape[1], dtype=p.dtype, device=p.device)
            else:
                state["q"] = torch.full_like(p, s ** 0.5)
            state["momentum_buffer"] = torch.zeros_like(p)
        return state

    def precondition(self, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """``P g`` for parameter ``p`` with its current preconditioner."""
        state = self.state[p]
        if "ql" in state:
            ql, qr = state["ql"], state["qr"]
            gm = g.reshape(ql.shape[0], -1)
            return (ql.T @ ql @ gm @ qr.T @ qr).view_as(g)
        return state["q"] ** 2 * g

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        closure, params, loss, grads = self._first_call(closure)
        groups = {id(p): g for g in self.param_groups for p in g["params"]}
        states = [self._init_state(p, groups[id(p)]) for p in params]
        probes = [torch.randn(p.shape, dtype=p.dtype, device=p.device, generator=self.generator)
                  for p in params]
        responses = hessian_vector_product(closure, params, probes)
        for p, g, v, h, state in zip(params, grads, probes, responses, states):
            group = groups[id(p)]
            if "ql" in state:
                shape = state["ql"].shape[0], state["qr"].shape[0]
                update_kron_(state["ql"], state["qr"], v.reshape(shape), h.reshape(shape),
                             group["precond_lr"])
            else:
                update_diag_(state["q"], v, h, group["precond_lr"])
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).add_(self.precondition(p, g),
                                             alpha=1 - group["momentum"])
            p.add_(buf, alpha=-group["lr"])
        set_grads(params, grads)
        return loss


def psgd(params: Iterable[Any], lr: float = 0.02, momentum: float = 0.9, precond_lr: float = 0.1,
         preconditioner: str = "kron", init_scale: float = 1.0, max_kron_dim: int = 1024,
         generator: torch.Generator | None = None) -> PSGD:
    """PSGD (Newton-type, Kronecker or diagonal Lie-group preconditioner)."""
    return PSGD(params, lr=lr, momentum=momentum, precond_lr=precond_lr,
                preconditioner=preconditioner, init_scale=init_scale,
                max_kron_dim=max_kron_dim, generator=generator)


OPTIMIZERS.register("psgd", psgd, papers=(29,),
                    summary="PSGD: Kronecker/diagonal Lie-group preconditioner fitted from HVPs")
