r"""Energy natural gradient descent (ENGD): damped Gauss-Newton with a line search.

For a least-squares loss :math:`L(\theta) = \tfrac12 \|\rho(\theta)\|^2` (a PINN loss, whose
residual vector stacks the weighted PDE and boundary residuals at the collocation points,
or any regression loss), with per-point Jacobian :math:`J = \partial \rho / \partial \theta`:

.. math::
    G = J^\top J, \qquad \mu = \delta\, \mathrm{tr}(G) / P, \qquad
    d = (G + \mu I)^{-1} J^\top \rho, \\
    \eta^* = \arg\min_{\eta \in \{\eta_0 2^{-k}\}_{k=0}^{K-1}} L(\theta - \eta d), \qquad
    \theta \leftarrow \theta - \eta^* d.

For a linear PDE operator the Gram matrix :math:`G` of the PINN loss *is* the energy Gram
matrix of Müller & Zeinhofer (the Hessian of the energy, a quadratic function of the network's
output, pulled back to parameter space), so this is their energy natural gradient; for a
nonlinear PDE it is the Gauss-Newton matrix of the residual. The direction :math:`d` is the
solution of the damped linear least-squares problem
:math:`\min_d \|J d - \rho\|^2 + \mu \|d\|^2` (tested against a dense solve).

Per-point Jacobians come from ``vmap(jacrev(...))`` over the points (the model's own
``output_jacobian(x, params)`` when it has one, as :class:`trainlab.pinn.model.PinnModel`
does, so every PDE term is differentiated with the shared :mod:`trainlab.pinn.derivatives`,
or, for a tanh MLP, by the batched Taylor-mode pass of :mod:`trainlab.pinn.mlp_taylor`).
Cost per step: one Jacobian (about one backward pass per point), the Gram matrix
(:func:`gram_matrix`: the ``P x P`` product from the blocks on and above the diagonal; it is
the larger cost for thousands of points and parameters), a ``P x P`` Cholesky solve and
``K`` loss evaluations; use it for networks up to a few thousand parameters. With fewer
residuals than parameters the ``M x M`` product :math:`J J^\top` would be cheaper; it is not
implemented (every recipe here has more points than parameters).

Needs the closure of :func:`trainlab.optim.loss_closure.make_closure` (it reads the closure's
model, inputs and targets) over a least-squares loss. That closure itself is not called: the
loss at the current weights comes from the outputs of the Jacobian's pass and the gradient
written to ``p.grad`` is :math:`J^\top \rho` (the closure's gradient to rounding, tested),
which saves a forward and backward pass per step (0.17 to 0.33 of about 2 CPU s on Burgers);
any other closure object (a subclass, a wrapper) is called once per step as the contract
says. ``loss_fn`` itself, or the task that owns it (``Task.loss``), must offer
``residuals(outputs, targets)`` with
``loss = 0.5 * ||residuals||^2``, affine in the outputs, row by row. Regression and PDE tasks
do; classification does not (a :class:`~trainlab.errors.ConfigError` says so).

Args:
    lr: the largest step of the line-search grid, :math:`\eta_0` (default 1, the
        Gauss-Newton step). The paper's grid is :math:`2^{-k}`, k = 0..30, applied to
        :math:`G^+ \nabla L` for a loss without the factor 1/2 (the authors' published code
        builds the Gram matrix without the Hessian's factor 2), which is twice the step
        here: ``lr=2, line_search_steps=31`` is the paper's grid.
    damping: relative damping :math:`\delta` (default 1e-10), > 0.
    line_search_steps: :math:`K`, the grid size (paper: 31 halvings,
        :math:`2^{-30} \approx 10^{-9}`); 1 means a fixed step ``lr``.
    exhaustive: evaluate the whole grid (the paper); the default stops at the first grid
        point whose loss rises again after a decrease below the current loss (the first
        local minimum along the grid: usually 2 to 5 evaluations instead of 31).
    adaptive: Levenberg-Marquardt control of :math:`\delta` (default on): it starts at
        ``damping_init``, is divided by 10 (down to ``damping``) after a step of length at
        least ``lr / 8``, multiplied by 4 after a shorter one, and by 4 with no move when no
        grid point lowers the loss. Off: :math:`\delta` = ``damping`` throughout (the paper).
    damping_init: the first :math:`\delta` of the adaptive control (default 1).

State (``optimizer.state[first parameter]``): ``step`` (count), ``eta`` (the last step size
chosen), ``mu`` (the last absolute damping), ``nu`` (the current relative damping).

References:
    Müller & Zeinhofer, "Achieving High Accuracy with PINNs via Energy Natural Gradient
    Descent", ICML 2023 (section 3, Algorithm 1: Gram matrix, pseudo-inverse, grid line
    search; not a papers.md row).

Deviations from the paper:
    The paper applies the pseudo-inverse of :math:`G`; here :math:`G + \mu I` is solved with
    :math:`\mu = 10^{-10}\,\mathrm{tr}(G)/P` (a least-squares solve without damping stalled in
    our Poisson runs, and the damping also makes the step well defined when :math:`G` is
    singular). From the paper's initialisation-free setting, a tiny fixed damping made no
    progress for tens of steps on Poisson (the Gauss-Newton model is poor far from the
    solution), hence the Levenberg-Marquardt control (``adaptive``, on by default) and the
    early-stopping line search (``exhaustive=False``); both can be switched off
    (``adaptive=False, exhaustive=True, lr=2`` is the paper's algorithm up to the damping).
    The line-search grid is powers of two below ``lr``. All parameter groups share one
    solve, so they must share hyper-parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp, vmap

from trainlab.errors import ConfigError, check_range
from trainlab.optim._outer import ClosureOptimizer
from trainlab.optim._registry import OPTIMIZERS
from trainlab.optim._syrk import syrk_gram
from trainlab.optim.loss_closure import LossClosure, set_grads

log = logging.getLogger("trainlab")
HYPER = ("lr", "damping", "line_search_steps", "adaptive", "damping_init", "exhaustive")


def output_jacobian(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor
                    ) -> torch.Tensor:
    """Per-point Jacobians of ``model``'s outputs with respect to ``params``,
    ``(N, outputs per row, P)`` (parameters flattened in the order of ``params``); the model's
    own ``output_jacobian`` when it has one, else ``vmap(jacrev(...))`` over the rows."""
    custom = getattr(model, "output_jacobian", None)
    if custom is not None:
        return custom(x, params)

    def one(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (xi[None],))[0].reshape(-1)

    jac = vmap(jacrev(one), in_dims=(None, 0))(params, x)
    return torch.cat([jac[n].reshape(len(x), jac[n].shape[1], -1) for n in params], 2)


def residual_fn(loss_fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``residuals(outputs, targets)`` of a least-squares loss (the loss's own, or its
    owner's, e.g. ``Task.residuals`` for ``Task.loss``)."""
    res = getattr(loss_fn, "residuals", None)
    if res is None:
        res = getattr(getattr(loss_fn, "__self__", None), "residuals", None)
    if res is None:
        raise ConfigError("ENGD needs a least-squares loss: loss_fn (or the task owning it) "
                          "must offer residuals(outputs, targets) with loss = 0.5 * "
                          "||residuals||^2 (regression and pinn-* tasks do)")
    return res


def least_squares_system(closure: Any, params: list[torch.Tensor], with_loss: bool = False
                         ) -> tuple[Any, ...]:
    """``(rho, J, loss_at)`` of the closure's least-squares loss at the current parameters:
    the residual vector ``(M,)``, its Jacobian ``(M, P)`` and a function giving the loss at
    other parameter values (a list like ``params``), evaluated without touching the model;
    with ``with_loss``, also the loss at the current parameters,
    ``loss_fn(model(inputs), targets)`` from the same outputs (no extra forward pass)."""
    try:
        model, loss_fn = closure.model, closure.loss_fn
        x, y = closure.inputs, closure.targets
    except AttributeError:
        raise ConfigError("ENGD needs the closure of trainlab.optim.loss_closure.make_closure "
                          "(it reads the closure's model, loss_fn, inputs and targets)") from None
    residuals = residual_fn(loss_fn)
    names = {id(p): n for n, p in model.named_parameters()}
    if any(id(p) not in names for p in params):
        raise ConfigError("ENGD: the optimizer's parameters must be parameters of the "
                          "closure's model")
    live = {names[id(p)]: p.detach() for p in params}
    both = getattr(model, "outputs_and_jacobian", None)
    owned = both is not None  # jac_f is a fresh tensor of this call: scaled in place below
    if owned:  # e.g. a PinnModel: the outputs come out of the Jacobian's pass
        out, jac_f = both(x, live)
    else:
        with torch.no_grad():
            out = model(x)
        jac_f = output_jacobian(model, live, x)  # (N, R_f, P)
    rho = residuals(out, y)
    width = out.reshape(len(out), -1).shape[1]
    # d rho_i / d f_i, row by row (rho is affine in the outputs): one jvp per output column
    cols = []
    for k in range(width):
        tangent = torch.zeros_like(out).reshape(len(out), -1)
        tangent[:, k] = 1
        _, col = jvp(lambda f: residuals(f, y), (out,), (tangent.view_as(out),))
        cols.append(col.reshape(len(out), -1))
    a = torch.stack(cols, 2)  # (N, R_rho, R_f)
    if a.shape[1:] == (1, 1):  # one residual of one output per row: a row scaling
        flat = jac_f.reshape(len(out), 1, -1)  # (the same products as the einsum below)
        jac = flat.mul_(a) if owned else a * flat
    else:
        jac = torch.einsum("nrk,nkp->nrp", a, jac_f.reshape(len(out), width, -1))
    fixed = {n: p.detach() for n, p in model.named_parameters() if n not in live}

    def loss_at(values: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            new = {**fixed, **{names[id(p)]: v for p, v in zip(params, values)}}
            return loss_fn(functional_call(model, new, (x,)), y)

    system = (rho.reshape(-1), jac.reshape(-1, jac.shape[-1]), loss_at)
    return (*system, loss_fn(out, y)) if with_loss else system


def damped_direction(jac: torch.Tensor, rho: torch.Tensor, damping: float
                     ) -> tuple[torch.Tensor, float]:
    r"""``d = (J^T J + mu I)^{-1} J^T rho`` with ``mu = damping * tr(J^T J) / P``; returns
    ``(d, mu)`` (``d = 0`` when ``J = 0``)."""
    return damped_solve(gram_matrix(jac), jac.T @ rho, damping)


def gram_matrix(jac: torch.Tensor, blocks: int = 4, syrk: bool = True) -> torch.Tensor:
    r"""``J^T J`` ``(P, P)``, exactly symmetric: by BLAS ``syrk`` (one triangle, half the
    multiply-adds of ``jac.T @ jac``; :func:`trainlab.optim._syrk.syrk_gram`) where it applies
    and ``syrk`` is True, else from the column blocks on and above the diagonal only (the
    lower ones are their transposes): ``(blocks + 1) / (2 blocks)`` of the multiply-adds of
    ``jac.T @ jac``. Both equal the full product to rounding (tested). On Burgers'
    ``8400 x 1981`` Jacobian (1 thread): ``syrk`` 0.54 to 0.58 CPU s, 4 blocks 0.71 to 0.77
    (8 blocks no faster, 16 slower), the full product 0.96 to 1.04."""
    check_range("blocks", blocks, low=1, owner="gram_matrix")
    if syrk:
        gram = syrk_gram(jac)
        if gram is not None:
            return gram
    size = jac.shape[1]
    edges = [round(i * size / blocks) for i in range(blocks + 1)]
    gram = jac.new_empty(size, size)
    for a in range(blocks):
        rows = slice(edges[a], edges[a + 1])
        for b in range(a, blocks):
            cols = slice(edges[b], edges[b + 1])
            block = jac[:, rows].T @ jac[:, cols]
            gram[rows, cols] = block
            if b > a:
                gram[cols, rows] = block.T
    return gram


def damped_solve(gram: torch.Tensor, rhs: torch.Tensor, damping: float
                 ) -> tuple[torch.Tensor, float]:
    r"""``d = (G + mu I)^{-1} b`` with ``mu = damping * tr(G) / P`` for a Gram matrix
    ``G = J^T J`` and ``b = J^T rho`` formed once (a rejected step re-solves with another
    damping without forming them again); ``G`` is not modified; returns ``(d, mu)``."""
    mu = damping * float(torch.diagonal(gram).sum()) / gram.shape[0]
    if mu == 0.0:
        return torch.zeros_like(rhs), 0.0
    gram = gram.clone()
    gram.diagonal().add_(mu)
    chol, info = torch.linalg.cholesky_ex(gram)
    if int(info) == 0:
        return torch.cholesky_solve(rhs[:, None], chol)[:, 0], mu
    log.warning("ENGD: the damped Gram matrix is not numerically positive definite "
                "(damping %g); falling back to a least-squares solve", damping)
    return torch.linalg.lstsq(gram, rhs[:, None]).solution[:, 0], mu


class ENGD(ClosureOptimizer):
    """Energy natural gradient / damped Gauss-Newton with a grid line search (see the module
    docstring for the update, arguments and references)."""

    joint_step = True
    needs_ggn = True
    joint_hypers = "all"  # one Gauss-Newton solve and line search over all groups

    def __init__(self, params: Iterable[Any], lr: float = 1.0, damping: float = 1e-10,
                 line_search_steps: int = 31, adaptive: bool = True, damping_init: float = 1.0,
                 exhaustive: bool = False):
        check_range("lr", lr, low=0.0, owner="ENGD")
        check_range("damping", damping, low=0.0, low_open=True, owner="ENGD")
        check_range("damping_init", damping_init, low=damping, owner="ENGD")
        check_range("line_search_steps", line_search_steps, low=1, owner="ENGD")
        super().__init__(params, dict(lr=lr, damping=damping,
                                      line_search_steps=int(line_search_steps),
                                      adaptive=bool(adaptive), damping_init=damping_init,
                                      exhaustive=bool(exhaustive)))
        first = self.param_groups[0]
        for group in self.param_groups[1:]:
            for key in HYPER:
                if group[key] != first[key]:
                    raise ConfigError(f"ENGD solves one system for all parameters: every "
                                      f"param group needs the same {key!r} (got "
                                      f"{first[key]!r} and {group[key]!r})")

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        h = self.param_groups[0]
        for group in self.param_groups[1:]:  # a scheduler may have changed one group only
            if any(group[k] != h[k] for k in HYPER):
                raise ConfigError("ENGD: param groups' hyper-parameters diverged; ENGD needs "
                                  "them equal")
        if type(closure) is LossClosure:  # its loss and gradient come from the system
            params = self._params()
            rho, jac, loss_at, loss = least_squares_system(self._require(closure), params,
                                                           with_loss=True)
            jac_rho = jac.T @ rho
            grads = [g.view_as(p).clone() for g, p in
                     zip(torch.split(jac_rho, [p.numel() for p in params]), params)]
            loss = loss.detach()
        else:
            closure, params, loss, grads = self._first_call(closure)
            rho, jac, loss_at = least_squares_system(closure, params)
            jac_rho = jac.T @ rho
        state = self.state[params[0]]
        nu = state.get("nu", h["damping_init"]) if h["adaptive"] else h["damping"]
        direction, mu = damped_solve(gram_matrix(jac), jac_rho, nu)  # damped_direction
        steps = [p.detach() for p in torch.split(direction, [p.numel() for p in params])]
        steps = [s.view_as(p) for s, p in zip(steps, params)]
        best_eta, best = 0.0, None
        if h["lr"] > 0 and bool(direction.any()):
            for k in range(h["line_search_steps"]):
                eta = h["lr"] * 0.5 ** k
                value = float(loss_at([p.detach() - eta * s for p, s in zip(params, steps)]))
                if best is None or value < best:
                    best_eta, best = eta, value
                elif not h["exhaustive"] and best < float(loss):
                    break  # past the first local minimum along the grid
        if h["adaptive"]:
            if best is None or best >= float(loss):  # no decrease: stay, damp more
                best_eta, nu = 0.0, min(nu * 4.0, 1e12)
            elif best_eta >= h["lr"] / 8:  # a step of useful length: trust the model more
                nu = max(nu / 10.0, h["damping"])
            else:  # the line search had to shrink the step a lot: damp more
                nu = nu * 4.0
        for p, s in zip(params, steps):
            p.sub_(best_eta * s)
        state["step"] = state.get("step", 0) + 1
        state["eta"], state["mu"], state["nu"] = best_eta, mu, nu
        set_grads(params, grads)
        return loss


def engd(params: Iterable[Any], lr: float = 1.0, damping: float = 1e-10,
         line_search_steps: int = 31, adaptive: bool = True, damping_init: float = 1.0,
         exhaustive: bool = False) -> ENGD:
    """Energy natural gradient descent (damped Gauss-Newton, grid line search)."""
    return ENGD(params, lr=lr, damping=damping, line_search_steps=line_search_steps,
                adaptive=adaptive, damping_init=damping_init, exhaustive=exhaustive)


OPTIMIZERS.register("engd", engd,
                    summary="energy natural gradient / damped Gauss-Newton with grid line "
                            "search (Muller & Zeinhofer 2023)")
