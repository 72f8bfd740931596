r"""A PDE problem as a trainlab task: ``trainlab run --task pinn-poisson --optim engd``.

The task's training set is the collocation points of every active loss term, each row tagged
with its term's index in the last column; :class:`~trainlab.pinn.model.PinnModel` (built by
the Trainer around the requested network through :attr:`Task.wrap_model`) turns a row into
the term's residual. The loss is

.. math::  L = \sum_t \frac{\lambda_t}{2}\, \mathrm{mean}_{x \in X_t} |r_t(x)|^2
           = \frac{1}{2N} \sum_{i} \hat w_i |r_i|^2, \quad \hat w_i = \lambda_{t(i)} N / n_{t(i)},

so a mini-batch mean is an unbiased estimate of the full loss. The test set is the problem's
evaluation grid (term index ``-1``: the model returns the solution), with the reference as
target. Recorded metrics: ``train/mse_<term>`` (mean squared residual of each term, the
loss terms before weighting), ``test/rel_l2`` (relative L2 error against the reference, the
number to report, never the loss alone) and the PDEBench metrics of
:mod:`trainlab.pinn.metrics`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainlab.errors import check_range
from trainlab.pinn.constraints import active_terms, check_constraint, term_weights
from trainlab.pinn.model import SOLUTION, PinnModel
from trainlab.pinn.problems import PROBLEMS, Problem, build_problem
from trainlab.tasks._task import TASKS, Task

log = logging.getLogger("trainlab")


@dataclass
class PinnTask(Task):
    """A :class:`~trainlab.tasks.Task` whose targets are ``[weight, term]`` rows (train) and
    ``[reference..., -1]`` rows (test); see the module docstring."""

    problem: Problem | None = None
    constraint: str = "soft"
    term_names: tuple[str, ...] = ()

    def _split(self, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return targets[:, :-1], targets[:, -1].round().long()

    def residuals(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        r"""The residual vector :math:`\rho` with ``loss = 0.5 * ||rho||^2``, ``(N, width)``
        (affine in ``outputs`` and row by row: what Gauss-Newton methods need)."""
        head, ids = self._split(targets)
        n = len(outputs)
        sol = ids == SOLUTION
        ref = torch.nn.functional.pad(head, (0, outputs.shape[1] - head.shape[1]))
        weight = torch.where(sol, torch.ones_like(head[:, 0]), head[:, 0])
        diff = torch.where(sol[:, None], outputs - ref, outputs)
        return diff * torch.sqrt(weight / n)[:, None]

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.residuals(outputs, targets).pow(2).sum()

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        from trainlab.pinn.metrics import pde_metrics

        out = {"loss": self.loss(outputs, targets)}
        head, ids = self._split(targets)
        if bool((ids == SOLUTION).all()):
            assert self.problem is not None
            out.update(pde_metrics(outputs[:, :head.shape[1]], head, self.problem))
            return out
        for i, name in enumerate(self.term_names):
            rows = ids == i
            if bool(rows.any()):
                out[f"mse_{name}"] = outputs[rows].pow(2).sum(1).mean()
        return out

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
           ) -> PinnTask:
        if dtype is not None and dtype != torch.float64:
            log.warning("pinn task %r in %s: PINN accuracy below about 1e-4 needs float64 "
                        "(trainlab's default for PDE problems)", self.name, dtype)
        return super().to(dtype, device)


def collocation(problem: Problem, constraint: str, weights: dict[str, float],
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Tagged collocation points ``(N, d + 1)`` and ``[weight, term]`` targets ``(N, 2)``,
    each term's default count drawn through ``generator``."""
    names = active_terms(problem, constraint)
    points = [problem.term(n).sample(problem.term(n).count, generator) for n in names]
    return tagged(points, names, weights)


def tagged(points: list[torch.Tensor], names: tuple[str, ...] | list[str],
           weights: dict[str, float]) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Tagged rows ``(N, d + 1)`` and ``[weight, term]`` targets ``(N, 2)`` of the points of
    each term (``points[i]`` belongs to term ``names[i]``), with the weights
    :math:`\hat w_i = \lambda_t N / n_t` of the module docstring."""
    total = sum(len(x) for x in points)
    xs, ys = [], []
    for i, (name, x) in enumerate(zip(names, points)):
        tag = torch.full((len(x), 1), float(i), dtype=x.dtype)
        w = torch.full((len(x), 1), weights[name] * total / len(x), dtype=x.dtype)
        xs.append(torch.cat([x, tag], 1))
        ys.append(torch.cat([w, tag], 1))
    return torch.cat(xs), torch.cat(ys)


def pinn_task(problem: str, constraint: str = "soft", weights: Any = None, data_seed: int = 0,
              **problem_params: Any) -> PinnTask:
    """The PINN task of registered problem ``problem``.

    Args:
        problem: a name from ``trainlab list problems``.
        constraint: ``"soft"`` or ``"hard"`` (:mod:`trainlab.pinn.constraints`).
        weights: loss-term weights ``{term: lambda}`` or ``"boundary=10"`` (default all 1).
        data_seed: seeds the collocation sampling.
        **problem_params: the problem's own parameters (e.g. ``k``, ``n_interior``).
    """
    prob = build_problem(problem, **problem_params)
    check_constraint(prob, constraint)
    check_range("data_seed", data_seed, low=0, owner=f"pinn-{problem}")
    lam = term_weights(prob, constraint, weights)
    x, y = collocation(prob, constraint, lam, torch.Generator().manual_seed(int(data_seed)))
    grid = prob.grid
    x_test = torch.cat([grid, torch.full((len(grid), 1), float(SOLUTION), dtype=grid.dtype)], 1)
    y_test = torch.cat([prob.reference(grid), torch.full((len(grid), 1), float(SOLUTION),
                                                         dtype=grid.dtype)], 1)

    def wrap(net: nn.Module) -> PinnModel:
        return PinnModel(net, prob, constraint)

    names = active_terms(prob, constraint)
    return PinnTask(f"pinn-{problem}", "regression", x, y, x_test, y_test,
                    num_outputs=prob.outputs,
                    info={"problem": problem, "params": prob.params, "weights": lam,
                          "constraint": constraint},
                    model_input_shape=(prob.network_inputs,), wrap_model=wrap, problem=prob,
                    constraint=constraint, term_names=names)


def _register(name: str) -> None:
    entry = PROBLEMS.entry(name)

    def factory(**params: Any) -> PinnTask:
        return pinn_task(name, **params)

    problem = f"{entry.obj.__module__}.{entry.obj.__qualname__}"
    factory.__doc__ = (
        f"PINN task of the {name!r} problem (see trainlab.pinn.task.pinn_task).\n\n"
        f"Deviations from the paper: those of the problem (:func:`{problem}`, registry "
        f"'problem', entry {name!r}); the task layer adds only the loss of "
        "trainlab.pinn.task "
        "(weighted mean squared residuals over the collocation points, with a mini-batch "
        "mean as an unbiased estimate) and the relative L2 test error.")
    TASKS.register(f"pinn-{name}", factory, papers=entry.papers,
                   summary=f"PINN: {entry.summary}")


for _name in PROBLEMS.names():
    _register(_name)


def fit_engd(task: PinnTask, steps: int, width: int = 16, depth: int = 2, seed: int = 0
             ) -> PinnModel:
    """A tanh MLP (``depth`` hidden layers of ``width``, Xavier-normal from ``seed``,
    float64) wrapped for ``task`` and trained by ``steps`` ENGD steps on the task's whole
    collocation set (the short Python-API run the pinn tests and benchmarks use; the
    Trainer, ``trainlab run --task pinn-... --optim engd``, is the full one with probes and
    store)."""
    from trainlab.init import apply as apply_init
    from trainlab.models import build_model
    from trainlab.optim import build_optimizer
    from trainlab.optim.loss_closure import make_closure

    check_range("steps", steps, low=0, owner="fit_engd")
    net = build_model("mlp", task.input_shape, task.num_outputs, depth=depth, width=width,
                      activation_name="tanh").double()
    model = task.build_network(net)
    apply_init(model, "xavier-normal", generator=torch.Generator().manual_seed(seed))
    opt = build_optimizer("engd", model.parameters(), lr=1.0)
    closure = make_closure(model, task.loss, task.x_train, task.y_train)
    for _ in range(int(steps)):
        opt.step(closure)
    return model
