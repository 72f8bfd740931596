r"""Natural gradient descent with a damped generalized Gauss-Newton (Fisher) metric.

.. math::  w_{t+1} = w_t - \eta\, (F(w_t) + \lambda I)^{-1} \nabla L(w_t),

with :math:`F = J^\top H_{\text{out}} J` the generalized Gauss-Newton matrix of the batch
(equal to the Fisher information for cross-entropy and squared-error losses). The linear
solve (``solver``) is

* ``"exact"``: the dense matrix built from ``n`` GGN-vector products, then a Cholesky solve
  (small models only: ``n`` parameters up to ``max_exact_dim``);
* ``"cg"``: matrix-free conjugate gradients on GGN-vector products, warm-started from the
  previous solution;
* ``"thermodynamic"``: the simulated Ornstein-Uhlenbeck process of
  :func:`trainlab.optim.thermodynamic_solve.ou_solve` (TNGD, papers.md row 55), warm-started
  from the previous solution as the paper's analog hardware is.

Needs the closure of :func:`~trainlab.optim.loss_closure.make_closure` (for ``ggn_vp``).

References:
    Amari, "Natural Gradient Works Efficiently in Learning", 1998 (the method); Martens,
    "New insights and perspectives on the natural gradient method", 2020 (GGN = Fisher);
    Donatella, Duffield, Aifer, Melanson, Coles, Ghosh, Kumar. "Thermodynamic Natural
    Gradient Descent", 2024 (papers.md row 55).

TNGD's moving average: the OU state is never reset, so step :math:`k` starts the process at
the previous estimate :math:`\tilde g_{k-1}` and reads it out after time :math:`t`; with
:math:`A_k = F_k + \lambda I`, its mean is

.. math::  \tilde g_k = e^{-A_k t}\, \tilde g_{k-1} + (I - e^{-A_k t})\, A_k^{-1} \nabla L_k,

an exponential moving average of natural gradients with the matrix weight
:math:`e^{-A_k t}` (``ou_time`` sets it: long runs give exact NGD, short ones average over
past steps). The Euler-Maruyama simulation gives it with :math:`(I - dt\,A_k)^{t/dt}` in place
of :math:`e^{-A_k t}` (tested exactly, and across three TNGD steps of a linear model).

Deviations from the paper:
    TNGD's hardware runs the OU process in continuous time; here it is simulated by
    Euler-Maruyama (``dt``). The full text of the paper (arXiv 2405.13817) was not available
    to check whether its algorithm adds a further scalar moving average on top of the
    process's own (searched: the search tool's "pages" corpus, which holds the arXiv HTML's
    opening only; the "code" corpus; the normal-computing GitHub repositories, none of them
    TNGD's code, thermox being the OU linear solver); only the process's own average is
    applied. The hybrid with Adam that the paper's summaries name (TNGD-Adam) is not
    provided.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch

from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.optim._generator import DrawsRandom, optimizer_generator
from trainlab.optim._outer import ClosureOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim.loss_closure import evaluate, set_grads
from trainlab.optim.thermodynamic_solve import ou_solve

SOLVERS = ("exact", "cg", "thermodynamic")


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                       x0: torch.Tensor | None = None, max_iter: int = 50, tol: float = 1e-10
                       ) -> torch.Tensor:
    """Solve ``A x = b`` for symmetric positive-definite ``A`` given as ``matvec``; stops when
    ``||r|| <= tol * ||b||`` or after ``max_iter`` products."""
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - matvec(x) if x0 is not None else b.clone()
    p, rs = r.clone(), r @ r
    stop = (tol * b.norm()) ** 2
    for _ in range(max_iter):
        if rs <= stop:
            break
        ap = matvec(p)
        alpha = rs / (p @ ap)
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = r @ r
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


def dense_matrix(matvec: Callable[[torch.Tensor], torch.Tensor], n: int, like: torch.Tensor
                 ) -> torch.Tensor:
    """The ``n x n`` matrix of a linear operator, one column per basis vector."""
    eye = torch.eye(n, dtype=like.dtype, device=like.device)
    return torch.stack([matvec(eye[i]) for i in range(n)], dim=1)


class NaturalGradient(DrawsRandom, ClosureOptimizer):
    """Damped natural gradient descent (see the module docstring).

    Args:
        params: parameters (all groups share one metric: the solve is global).
        lr: step size, >= 0. damping: Tikhonov damping ``lambda`` > 0.
        solver: ``"exact"``, ``"cg"`` or ``"thermodynamic"``.
        cg_iters, cg_tol: CG budget and relative residual tolerance.
        ou_time, ou_dt, temperature: duration, time step and noise temperature of the
            simulated OU process (``solver="thermodynamic"``).
        max_exact_dim: largest parameter count the dense solve accepts.
        generator: randomness of the OU noise.
    """

    joint_hypers = "all"
    needs_ggn = True

    def __init__(self, params: Iterable[Any], lr: float = 0.1, damping: float = 1e-3,
                 solver: Literal["exact", "cg", "thermodynamic"] = "cg", cg_iters: int = 50,
                 cg_tol: float = 1e-10, ou_time: float = 20.0, ou_dt: float = 0.05,
                 temperature: float = 0.0, max_exact_dim: int = 4096,
                 generator: torch.Generator | None = None):
        owner = "NaturalGradient"
        check_range("lr", lr, low=0.0, owner=owner)
        check_range("damping", damping, low=0.0, low_open=True, owner=owner)
        check_range("cg_iters", cg_iters, low=1, owner=owner)
        check_range("ou_time", ou_time, low=0.0, low_open=True, owner=owner)
        check_range("ou_dt", ou_dt, low=0.0, low_open=True, owner=owner)
        check_range("temperature", temperature, low=0.0, owner=owner)
        check_choice("solver", solver, SOLVERS, owner=owner)
        defaults = dict(lr=lr, damping=damping, solver=solver, cg_iters=cg_iters, cg_tol=cg_tol,
                        ou_time=ou_time, ou_dt=ou_dt, temperature=temperature,
                        max_exact_dim=max_exact_dim)
        super().__init__(params, defaults)
        self.generator = optimizer_generator(generator, self.param_groups)
        self.stochastic = solver == "thermodynamic"  # the OU solve draws from the generator

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        closure = self._require(closure)
        ggn_vp = getattr(closure, "ggn_vp", None)
        if ggn_vp is None:
            raise ConfigError("NaturalGradient needs a closure with ggn_vp "
                              "(trainlab.optim.loss_closure.make_closure)")
        params = self._params()
        loss, grads = evaluate(closure, params)
        h = self.param_groups[0]
        shapes = [p.shape for p in params]
        sizes = [p.numel() for p in params]
        g = torch.cat([t.reshape(-1) for t in grads])

        def matvec(v: torch.Tensor) -> torch.Tensor:
            parts = [c.view(s) for c, s in zip(torch.split(v, sizes), shapes)]
            return torch.cat([t.reshape(-1) for t in ggn_vp(parts)]) + h["damping"] * v

        state = self.state[params[0]]
        x0 = state.get("natural_grad")
        if h["solver"] == "exact":
            if g.numel() > h["max_exact_dim"]:
                raise ConfigError(f"NaturalGradient(solver='exact') builds a dense "
                                  f"{g.numel()}x{g.numel()} matrix; max_exact_dim is "
                                  f"{h['max_exact_dim']}: use solver='cg'")
            a = dense_matrix(matvec, g.numel(), g)
            nat = torch.cholesky_solve(g[:, None], torch.linalg.cholesky((a + a.T) / 2))[:, 0]
        elif h["solver"] == "cg":
            nat = conjugate_gradient(matvec, g, x0, h["cg_iters"], h["cg_tol"])
        else:
            nat = ou_solve(matvec, g, x0=x0, time=h["ou_time"], dt=h["ou_dt"],
                           temperature=h["temperature"], generator=self.generator)
        state["natural_grad"] = nat.clone()
        for p, d in zip(params, torch.split(nat, sizes)):
            p.add_(d.view_as(p), alpha=-h["lr"])
        set_grads(params, grads)
        return loss


class ThermodynamicNGD(NaturalGradient):
    """:class:`NaturalGradient` with ``solver="thermodynamic"`` (its own class, so the registry
    reads ``stochastic`` from it)."""

    stochastic = True


def natural_gradient(params: Iterable[Any], lr: float = 0.1, damping: float = 1e-3,
                     solver: str = "cg", cg_iters: int = 50, cg_tol: float = 1e-10,
                     ou_time: float = 20.0, ou_dt: float = 0.05, temperature: float = 0.0,
                     max_exact_dim: int = 4096, generator: torch.Generator | None = None
                     ) -> NaturalGradient:
    """Damped natural gradient descent with an exact, CG or thermodynamic (OU) solve."""
    return NaturalGradient(params, lr=lr, damping=damping, solver=solver, cg_iters=cg_iters,
                           cg_tol=cg_tol, ou_time=ou_time, ou_dt=ou_dt, temperature=temperature,
                           max_exact_dim=max_exact_dim, generator=generator)


def thermodynamic_ngd(params: Iterable[Any], lr: float = 0.1, damping: float = 1e-3,
                      ou_time: float = 20.0, ou_dt: float = 0.05, temperature: float = 0.0,
                      generator: torch.Generator | None = None) -> ThermodynamicNGD:
    """TNGD: natural gradient whose solve is a simulated Ornstein-Uhlenbeck process."""
    return ThermodynamicNGD(params, lr=lr, damping=damping, solver="thermodynamic",
                            ou_time=ou_time, ou_dt=ou_dt, temperature=temperature,
                            generator=generator)


OPTIMIZERS.register("natural-gradient", natural_gradient, papers=(55,),
                    summary="damped natural gradient (GGN/Fisher) with exact, CG or OU solve")
OPTIMIZERS.register("thermodynamic-ngd", thermodynamic_ngd, papers=(55,),
                    summary="Thermodynamic NGD: natural-gradient solve as a simulated OU process")
