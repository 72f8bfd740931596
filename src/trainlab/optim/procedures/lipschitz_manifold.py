r"""Learning a Lipschitz function on a manifold sampled by a graph, by primal-dual updates.

The problem is the smallest Lipschitz bound compatible with fitting the labels,

.. math::  \min_{\theta,\, L \ge 0}\; L \quad \text{s.t.} \quad
    \ell(\theta) = \frac1m \sum_{\text{labelled}} \mathrm{loss}(f_\theta(x_i), y_i) \le \epsilon,
    \qquad g_i(\theta) \le L \;\; \text{for every sample } i,

where :math:`g_i` estimates :math:`\|\nabla_{\mathcal M} f_\theta(x_i)\|^2` on a
:math:`k`-nearest-neighbour graph of all samples (labelled and unlabelled) with heat-kernel
weights :math:`w_{ij}`: :math:`g_i = \sum_j w_{ij} (f_i - f_j)^2 / d_{ij}^2 \big/ \sum_j
w_{ij}`. The Lagrangian :math:`L + \mu(\ell - \epsilon) + \frac1n \sum_i \lambda_i (g_i - L)` (the
sample average standing for the expectation over the manifold) is a
manifold (Laplacian) regularizer whose per-sample weights :math:`\lambda_i` are the dual
variables; gradient descent on :math:`(\theta, L)` and projected gradient ascent on
:math:`(\lambda, \mu)` adapt them, so the penalty concentrates where the function is
steepest (global rather than average smoothness) and :math:`L` tracks the Lipschitz constant
of the solution. At a saddle point :math:`\frac1n\sum_i \lambda_i = 1` and :math:`\lambda_i > 0`
only where :math:`g_i = L`.

References:
    Cerviño, Chamon, Haeffele, Vidal, Ribeiro. "Learning Globally Smooth Functions on
    Manifolds", ICML 2023 (papers.md row 52).

Deviations from the paper:
    The local gradient estimate :math:`g_i` (normalized difference quotients on a
    :math:`k`-NN graph) and the full-batch gradient descent-ascent schedule are this
    implementation's choices; the constraint level ``epsilon`` is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from trainlab.errors import check_range


@dataclass(frozen=True)
class SampleGraph:
    """A symmetric ``k``-NN graph: edge lists ``rows``, ``cols``, heat-kernel ``weights`` and
    edge lengths ``lengths``; ``num_nodes`` samples."""

    rows: torch.Tensor
    cols: torch.Tensor
    weights: torch.Tensor
    lengths: torch.Tensor
    num_nodes: int


def knn_graph(x: torch.Tensor, k: int, bandwidth: float | None = None) -> SampleGraph:
    """The symmetrized ``k``-NN graph of the rows of ``x`` with weights
    ``exp(-d^2 / (2 t^2))`` (``t``: the median ``k``-NN distance unless given)."""
    check_range("k", k, low=1, high=x.shape[0] - 1, owner="knn_graph")
    dist = torch.cdist(x, x)
    dist.fill_diagonal_(float("inf"))
    nn_dist, nn_idx = dist.topk(k, largest=False)
    rows = torch.arange(x.shape[0]).repeat_interleave(k)
    cols = nn_idx.reshape(-1)
    pairs = torch.unique(torch.stack([torch.cat([rows, cols]), torch.cat([cols, rows])]), dim=1)
    r, c = pairs
    lengths = (x[r] - x[c]).norm(dim=1)
    t = float(nn_dist.median()) if bandwidth is None else bandwidth
    return SampleGraph(r, c, torch.exp(-lengths ** 2 / (2 * t * t)), lengths, x.shape[0])


def local_gradient_sq(values: torch.Tensor, graph: SampleGraph) -> torch.Tensor:
    """``g_i``: weighted mean over the edges at ``i`` of the squared difference quotient
    ``((f_i - f_j) / d_ij)^2`` (summed over output dimensions)."""
    diff = (values[graph.rows] - values[graph.cols]).reshape(len(graph.rows), -1)
    quot = (diff ** 2).sum(-1) / graph.lengths ** 2
    num = torch.zeros(graph.num_nodes, dtype=values.dtype).index_add_(
        0, graph.rows, graph.weights.to(values.dtype) * quot)
    den = torch.zeros(graph.num_nodes, dtype=values.dtype).index_add_(
        0, graph.rows, graph.weights.to(values.dtype))
    return num / den


class LipschitzManifold:
    """Primal-dual training of ``model`` under a graph Lipschitz constraint (module
    docstring).

    Args:
        model: the network ``f_theta``; trained in place.
        samples: all samples (labelled first, then unlabelled), rows of the graph.
        num_labelled: how many leading ``samples`` carry labels.
        loss_fn: ``loss_fn(outputs, targets)``, the labelled loss.
        epsilon: the loss level ``epsilon`` >= 0.
        k: neighbours per node. lr: primal step (Adam on ``theta``, plain on ``L``).
        dual_lr: dual ascent step.
    """

    def __init__(self, model: nn.Module, samples: torch.Tensor, num_labelled: int,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 epsilon: float, k: int = 8, lr: float = 1e-2, dual_lr: float = 0.1):
        check_range("epsilon", epsilon, low=0.0, owner="LipschitzManifold")
        check_range("num_labelled", num_labelled, low=1, high=samples.shape[0],
                    owner="LipschitzManifold")
        check_range("dual_lr", dual_lr, low=0.0, low_open=True, owner="LipschitzManifold")
        self.model, self.samples, self.num_labelled = model, samples, num_labelled
        self.loss_fn, self.epsilon, self.lr, self.dual_lr = loss_fn, epsilon, lr, dual_lr
        self.graph = knn_graph(samples, k)
        n = samples.shape[0]
        self.duals = torch.ones(n, dtype=samples.dtype)              # lambda_i (a density)
        self.loss_dual = torch.ones((), dtype=samples.dtype)         # mu
        self.bound = torch.zeros((), dtype=samples.dtype)            # L
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def step(self, targets: torch.Tensor) -> dict[str, float]:
        """One descent-ascent step; returns the loss, ``L``, ``max_i g_i`` and the dual mass."""
        self.optimizer.zero_grad()
        with torch.enable_grad():
            out = self.model(self.samples)
            loss = self.loss_fn(out[:self.num_labelled], targets)
            g = local_gradient_sq(out, self.graph)
            (self.loss_dual * loss + (self.duals * g).mean()).backward()
        self.optimizer.step()
        g, loss = g.detach(), loss.detach()
        self.bound = (self.bound - self.lr * (1 - self.duals.mean())).clamp_min(0.0)
        self.duals = (self.duals + self.dual_lr * (g - self.bound)).clamp_min(0.0)
        self.loss_dual = (self.loss_dual + self.dual_lr * (loss - self.epsilon)).clamp_min(0.0)
        return {"loss": float(loss), "lipschitz_sq": float(self.bound),
                "max_local_gradient_sq": float(g.max()), "dual_mass": float(self.duals.mean())}
