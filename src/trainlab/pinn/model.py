"""The network as a PINN: residuals of every loss term at tagged collocation points.

A :class:`PinnModel` wraps any network ``net: (B, d) -> (B, m)`` so that the rest of trainlab
(the Trainer, probes, curvature operators, closure optimizers) sees an ordinary model: its
input rows are collocation points with the index of their loss term in the last column, and
its output rows are the residuals of that term (row ``-1`` asks for the solution itself, used
on the evaluation grid). All input derivatives come from :func:`trainlab.pinn.derivatives.jet`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from trainlab.errors import ConfigError
from trainlab.pinn import mlp_taylor
from trainlab.pinn.constraints import active_terms, check_constraint, hard_output
from trainlab.pinn.derivatives import Jet, jet
from trainlab.pinn.problems import Problem

SOLUTION = -1
_FLAT_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.Hardtanh, nn.PReLU)


class PinnModel(nn.Module):
    """``net`` made physics-informed for ``problem``.

    Args:
        net: the network (its parameters are this module's parameters).
        problem: the :class:`~trainlab.pinn.problems.Problem`.
        constraint: ``"soft"`` (conditions as penalty terms) or ``"hard"`` (output transform
            of :mod:`trainlab.pinn.constraints`; only the PDE term stays).
        taylor: compute residuals and parameter Jacobians by the batched Taylor-mode passes
            of :mod:`trainlab.pinn.mlp_taylor` where they apply (a soft-constrained
            ``nn.Sequential`` of ``Linear`` and ``Tanh`` layers on unembedded coordinates;
            the same numbers as the per-point ``torch.func`` path to rounding, several times
            cheaper); False: always the per-point path. Default True; the attribute
            ``taylor`` says which path is in use.

    Raises:
        ConfigError: a piecewise-linear activation (ReLU, ...) in a network for a
            second-order problem (its second derivatives vanish almost everywhere).
    """

    def __init__(self, net: nn.Module, problem: Problem, constraint: str = "soft",
                 taylor: bool = True):
        super().__init__()
        self.net, self.problem = net, problem
        self.constraint = check_constraint(problem, constraint)
        self.terms = [problem.term(n) for n in active_terms(problem, constraint)]
        flat = [type(m).__name__ for m in net.modules() if isinstance(m, _FLAT_ACTIVATIONS)]
        if flat and problem.order >= 2:
            raise ConfigError(f"problem {problem.name!r} has second derivatives, but the "
                              f"network uses {flat[0]}, whose second derivative is zero: use a "
                              "smooth activation (e.g. model.activation=tanh)")
        self.taylor = bool(taylor) and mlp_taylor.applicable(self)

    @property
    def width(self) -> int:
        return self.problem.outputs

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """The approximate solution at points ``x`` ``(n, d)``, ``(n, outputs)``."""
        raw = self.net(self.problem.embed(x))
        return hard_output(self.problem, x, raw) if self.constraint == "hard" else raw

    def term_residual(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Residuals of active term ``index`` at points ``x``, padded to ``(n, width)``."""
        if self.taylor:
            return mlp_taylor.term_residual(self, index, x)
        term = self.terms[index]
        if term.order == 0:
            r = term.residual(Jet(self.solution(x)), x)
        else:
            r = term.residual(jet(lambda p: self.solution(p[None])[0], x, order=term.order), x)
        if r.shape[1] > self.width:
            raise ConfigError(f"term {term.name!r} has {r.shape[1]} residual components, more "
                              f"than the {self.width} outputs")
        return torch.nn.functional.pad(r, (0, self.width - r.shape[1]))

    def _split(self, xt: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]:
        ids = xt[:, -1].round().long()
        groups = [(i, torch.nonzero(ids == i).squeeze(1))
                  for i in [SOLUTION, *range(len(self.terms))]]
        bad = ids[(ids < SOLUTION) | (ids >= len(self.terms))]
        if len(bad):
            raise ConfigError(f"PinnModel: term index {int(bad[0])} in the last input column; "
                              f"valid: -1 (solution) and 0..{len(self.terms) - 1}")
        return xt[:, :-1], [(i, rows) for i, rows in groups if len(rows)]

    def forward(self, xt: torch.Tensor) -> torch.Tensor:
        x, groups = self._split(xt)
        out = x.new_zeros(len(x), self.width)
        for i, rows in groups:
            value = self.solution(x[rows]) if i == SOLUTION else self.term_residual(i, x[rows])
            out = out.index_put((rows,), value)
        return out

    def output_jacobian(self, xt: torch.Tensor, params: dict[str, torch.Tensor]
                        ) -> torch.Tensor:
        """Per-point Jacobians of the outputs with respect to ``params`` (names as in
        ``named_parameters()``), ``(N, width, P)``, the parameters flattened in the order of
        ``params``: with :attr:`taylor`, the batched pass of
        :func:`trainlab.pinn.mlp_taylor.term_jacobian` over chunks of rows; else one
        ``vmap(jacrev(...))`` per term, so each point costs one backward pass through its
        own residual."""
        return self.outputs_and_jacobian(xt, params, outputs=False)[1]

    def outputs_and_jacobian(self, xt: torch.Tensor, params: dict[str, torch.Tensor],
                             outputs: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(self(xt), output_jacobian(xt, params))`` without gradients, the outputs
        bit-identical to the forward pass (``None`` when ``outputs`` is False). With
        :attr:`taylor` the residuals come out of the Jacobian's own pass (the same chunks
        and arithmetic as the forward), so they cost no extra forward pass."""
        x, groups = self._split(xt)
        names = list(params)
        size = sum(p.numel() for p in params.values())
        if self.taylor:  # every row is in one group: no zero fill needed
            out = x.new_empty(len(x), self.width, size)
            values = x.new_zeros(len(x), self.width) if outputs else None
            for i, rows in groups:  # chunks of rows keep the streams in cache
                for part in torch.split(rows, mlp_taylor.CHUNK):
                    start = int(part[0])  # consecutive rows (the usual layout): write in place
                    span = (out[start:start + len(part)] if torch.equal(
                        part, torch.arange(start, start + len(part))) else None)
                    r, jac = mlp_taylor.term_jacobian(self, i, x[part], params, span)
                    if span is None:
                        out.index_put_((part,), jac)
                    if outputs and i != SOLUTION:
                        values.index_put_((part,), r)
                if outputs and i == SOLUTION:  # the forward's own arithmetic (nn.Linear)
                    with torch.no_grad():
                        values.index_put_((rows,), self.solution(x[rows]))
            return values, out
        out = x.new_zeros(len(x), self.width, size)
        for i, rows in groups:
            view = _TermView(self, i)
            owned = {f"owner.{n}": p for n, p in params.items()}

            def one(p: dict[str, torch.Tensor], xi: torch.Tensor, view=view) -> torch.Tensor:
                return functional_call(view, p, (xi[None],))[0]

            jac = vmap(jacrev(one), in_dims=(None, 0))(owned, x[rows])
            jac = {n[len("owner."):]: v for n, v in jac.items()}
            flat = torch.cat([jac[n].reshape(len(rows), self.width, -1) for n in names], 2)
            out = out.index_put((rows,), flat)
        if not outputs:
            return None, out
        with torch.no_grad():
            return self(xt), out


class _TermView(nn.Module):
    """One term of a :class:`PinnModel` as a module of untagged points (what
    ``functional_call`` needs inside ``vmap``: no data-dependent split)."""

    def __init__(self, owner: PinnModel, index: int):
        super().__init__()
        self.owner, self.index = owner, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.index == SOLUTION:
            return self.owner.solution(x)
        return self.owner.term_residual(self.index, x)
