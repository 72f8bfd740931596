r"""AEPG: adaptive gradient descent with energy (AEGD), for preconditioned directions.

With the energy variable :math:`r` (initialized to :math:`\sqrt{f(x_0) + c}`),
:math:`v_k = \nabla f(x_k) / (2\sqrt{f(x_k) + c})` and a positive semi-definite
preconditioner :math:`P_k`:

.. math::
    r_{k+1} = \frac{r_k}{1 + 2\eta\, v_k^\top P_k v_k}, \qquad
    x_{k+1} = x_k - 2\eta\, r_{k+1} P_k v_k .

:math:`r` is non-increasing for *any* step size :math:`\eta` (unconditional energy
stability), and :math:`2\eta r_{k+1}` is the adaptive effective step. Preconditioners:

* ``"identity"``: scalar-energy AEGD;
* ``"ggn"``: the natural-gradient instance, :math:`P = (F + \lambda I)^{-1}` with
  :math:`F` the batch GGN (the Fisher for cross-entropy/squared error), solved by conjugate
  gradients on GGN-vector products (needs ``make_closure``).

``coordinatewise=True`` (identity only) is the original AEGD with one energy per coordinate:
:math:`r_{k+1} = r_k / (1 + 2\eta v_k^2)`, :math:`x_{k+1} = x_k - 2\eta r_{k+1} v_k`.

References:
    Liu, Nurbekyan, Tian, Yang. "Adaptive Preconditioned Gradient Descent with Energy", 2023
    (papers.md row 43); Liu, Tian. "AEGD: Adaptive Gradient Descent with Energy", 2020 (the
    base method; defaults ``lr = 0.1``, ``c = 1``).

Deviations from the paper:
    The Hessian-Riemannian (constrained) instances and the projection for linear equality
    constraints are not implemented; the natural-gradient solve is truncated CG.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.optim._outer import ClosureOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.closure_curvature import curvature_matvec, flat, split_like
from trainlab.optim.loss_closure import set_grads
from trainlab.optim.natural_gradient import conjugate_gradient

PRECONDITIONERS = ("identity", "ggn")


class AEPG(ClosureOptimizer):
    """Energy-adaptive (preconditioned) gradient descent (module docstring).

    Args:
        params: parameters (one global energy over all groups unless ``coordinatewise``).
        lr: base step ``eta`` >= 0 (any value is energy-stable).
        c: shift making ``f + c > 0``.
        preconditioner: ``"identity"`` or ``"ggn"`` (natural gradient).
        damping: ``lambda`` of the natural-gradient solve, > 0.
        cg_iters: CG budget of the natural-gradient solve.
        coordinatewise: one energy per coordinate (original AEGD; identity only).

    State keys: ``energy`` (scalar, or one per coordinate), ``natural_grad`` (``"ggn"``).
    """

    joint_hypers = "all"
    joint_step = True

    def __init__(self, params: Iterable[Any], lr: float = 0.1, c: float = 1.0,
                 preconditioner: Literal["identity", "ggn"] = "identity",
                 damping: float = 1e-3, cg_iters: int = 20, coordinatewise: bool = False):
        check_range("lr", lr, low=0.0, owner="AEPG")
        check_range("damping", damping, low=0.0, low_open=True, owner="AEPG")
        check_range("cg_iters", cg_iters, low=1, owner="AEPG")
        check_choice("preconditioner", preconditioner, PRECONDITIONERS, owner="AEPG")
        if coordinatewise and preconditioner != "identity":
            raise ConfigError("AEPG: coordinatewise=True needs preconditioner='identity'")
        super().__init__(params, dict(lr=lr, c=c, preconditioner=preconditioner,
                                      damping=damping, cg_iters=cg_iters,
                                      coordinatewise=coordinatewise))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        closure, params, loss, grads = self._first_call(closure)
        h = self.param_groups[0]
        shifted = float(loss) + h["c"]
        if shifted <= 0:
            raise ConfigError(f"AEPG needs f + c > 0; got f = {float(loss):g}, c = {h['c']:g}: "
                              "raise c")
        v = flat(grads) / (2 * shifted ** 0.5)
        state = self.state[params[0]]
        if "energy" not in state:
            start = torch.full((), shifted ** 0.5, dtype=v.dtype, device=v.device)
            state["energy"] = start.expand_as(v).clone() if h["coordinatewise"] else start
        if h["preconditioner"] == "ggn":
            ggn = curvature_matvec(closure, params, "ggn", "AEPG")
            pv = conjugate_gradient(lambda u: ggn(u) + h["damping"] * u, v,
                                    state.get("natural_grad"), h["cg_iters"])
            state["natural_grad"] = pv.clone()
        else:
            pv = v
        quad = v * pv if h["coordinatewise"] else v @ pv
        state["energy"] = state["energy"] / (1 + 2 * h["lr"] * quad)
        update = 2 * h["lr"] * state["energy"] * pv
        for p, u in zip(params, split_like(update, params)):
            p.sub_(u)
        set_grads(params, grads)
        return loss


def aepg(params: Iterable[Any], lr: float = 0.1, c: float = 1.0, preconditioner: str = "identity",
         damping: float = 1e-3, cg_iters: int = 20, coordinatewise: bool = False) -> AEPG:
    """AEGD-style energy-adaptive descent with an identity or natural-gradient preconditioner."""
    return AEPG(params, lr=lr, c=c, preconditioner=preconditioner, damping=damping,
                cg_iters=cg_iters, coordinatewise=coordinatewise)


OPTIMIZERS.register("aepg", aepg, papers=(43,),
                    summary="energy-adaptive (AEGD) preconditioned descent; energy never grows")
