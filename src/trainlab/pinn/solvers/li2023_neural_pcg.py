r"""A learned PCG preconditioner: a graph neural network maps the system matrix to a sparse
lower-triangular factor ``L``, and CG is preconditioned with :math:`M = (LL^\top)^{-1}`
(papers.md row 59).

The matrix is read as a graph (nodes = unknowns, edges = off-diagonal nonzeros). An
encoder–processor–decoder network (MeshGraphNets-style: MLP encoders, ``blocks`` rounds of
edge update ``e_ij <- e_ij + phi([h_i, h_j, e_ij])`` then node update
``h_i <- h_i + gamma([h_i, sum_j e_ij])``, LayerNorm after each MLP) predicts one value per
entry of ``tril(A)``: the factor has the sparsity of A's lower triangle, like IC(0). It is
trained on the family's systems with the paper's data-driven loss, which replaces the
Frobenius distance :math:`\|LL^\top - A\|_F` by the residual on solutions drawn from the
PDE's own distribution,

.. math::  \ell(\theta) = \frac{1}{|D|}\sum_{(A, x, b) \in D}
           \frac{\|L_\theta(A) L_\theta(A)^\top x - b\|_2^2}{\|b\|_2^2},
           \qquad Ax = b,

so the factor is accurate on the (smooth, low-frequency) solutions that PCG must resolve.

SPD by construction: the diagonal of ``L`` is ``softplus(.) + 1e-3`` times the square root of
A's diagonal, so ``L`` is nonsingular and :math:`LL^\top` is symmetric positive definite for
any weights (tested). Inputs are scale-free: node feature ``log(A_ii / mean diag)``, edge
features ``A_ij / sqrt(A_ii A_jj)`` and ``log(|A_ij| / mean diag)``; the output is the factor
of the diagonally scaled matrix, ``L = D^{1/2} \hat L``.

References:
    Li, Chen, Du & Matusik, "Learning Preconditioners for Conjugate Gradient PDE Solvers",
    ICML 2023 (papers.md row 59): GNN preconditioner :math:`LL^\top` with A's lower-triangular
    sparsity, the data-driven loss above, PCG iterations to tolerance against Jacobi and IC
    on PDE families (network sizes from the authors' released code). Pfaff et al.,
    "Learning Mesh-Based Simulation with Graph Networks", ICLR 2021 (the
    encoder–processor–decoder the paper's network follows).

Measured (64x64 lognormal family, 16 training matrices, defaults, seeds 0-2, 24 held-out
systems; ``benchmarks/learned_pcg.py``): 52.3 +- 3.6 PCG iterations to 1e-8 against 250.8
for Jacobi (4.8x fewer), 76.0 for IC(0) and 8.9 for pyamg's smoothed-aggregation AMG. On
the piecewise-constant family (``--kind piecewise``, seed 0): 89.4 against 252.2 (Jacobi,
2.8x), 77.1 (IC(0)) and 9.8 (AMG).

Deviations from the paper:
    - CPU sizes: hidden width 32 and 6 message-passing rounds (the authors' code defaults to
      width 128 and 15 rounds), a few hundred Adam steps instead of many epochs on a GPU.
    - The positive-diagonal transform and the diagonal scaling ``D^{1/2}`` are ours (they make
      the SPD guarantee unconditional and the inputs scale-free).
    - The family is the 5-point variable-coefficient Poisson problem of
      :mod:`~trainlab.pinn.solvers.poisson_family` (the paper's own data are FEM heat/flow
      problems on meshes, not available here).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from trainlab.errors import check_range
from trainlab.pinn.solvers._method import SOLVERS, LinearSolver
from trainlab.pinn.solvers.classical import FactorPreconditioner


def _mlp(inp: int, out: int, hidden: int, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                               nn.ReLU(), nn.Linear(hidden, out)]
    if norm:
        layers.append(nn.LayerNorm(out))
    return nn.Sequential(*layers)


class MatrixGraph:
    """The graph of a symmetric sparse matrix, as torch index tensors and scale-free
    features (float64 unless ``dtype`` says otherwise)."""

    def __init__(self, A: sp.spmatrix, dtype: torch.dtype = torch.float32):
        A = sp.csr_matrix(A)
        coo = A.tocoo()
        off = coo.row != coo.col
        row, col, val = coo.row[off], coo.col[off], coo.data[off]
        d = A.diagonal().astype(np.float64)
        if np.any(d <= 0):
            from trainlab.errors import ConfigError

            raise ConfigError("neural-pcg: the matrix has a non-positive diagonal; not SPD")
        scale = d.mean()
        self.n = A.shape[0]
        self.sqrt_diag = torch.from_numpy(np.sqrt(d))
        self.dst = torch.from_numpy(row.astype(np.int64))
        self.src = torch.from_numpy(col.astype(np.int64))
        lower = row > col
        self.lower = torch.from_numpy(np.flatnonzero(lower))
        self.lower_row = self.dst[self.lower]
        self.lower_col = self.src[self.lower]
        self.node_x = torch.from_numpy(np.log(d / scale)[:, None]).to(dtype)
        self.edge_x = torch.from_numpy(np.stack(
            [val / np.sqrt(d[row] * d[col]), np.log(np.abs(val) / scale + 1e-300)], 1)).to(dtype)


class FactorGNN(nn.Module):
    """Encoder–processor–decoder GNN: matrix graph -> (diagonal, strictly lower) entries of
    the normalized factor ``\\hat L`` (diagonal positive)."""

    def __init__(self, hidden: int = 32, blocks: int = 6):
        super().__init__()
        self.node_enc = _mlp(1, hidden, hidden)
        self.edge_enc = _mlp(2, hidden, hidden)
        self.edge_mlps = nn.ModuleList(_mlp(3 * hidden, hidden, hidden) for _ in range(blocks))
        self.node_mlps = nn.ModuleList(_mlp(2 * hidden, hidden, hidden) for _ in range(blocks))
        self.diag_dec = _mlp(hidden, 1, hidden, norm=False)
        self.off_dec = _mlp(3 * hidden, 1, hidden, norm=False)

    def forward(self, g: MatrixGraph) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.node_enc(g.node_x)
        e = self.edge_enc(g.edge_x)
        for edge_mlp, node_mlp in zip(self.edge_mlps, self.node_mlps):
            e = e + edge_mlp(torch.cat([h[g.dst], h[g.src], e], 1))
            agg = torch.zeros_like(h).index_add_(0, g.dst, e)
            h = h + node_mlp(torch.cat([h, agg], 1))
        diag = nn.functional.softplus(self.diag_dec(h)[:, 0]) + 1e-3
        el = e[g.lower]
        off = self.off_dec(torch.cat([el, h[g.lower_row], h[g.lower_col]], 1))[:, 0]
        return diag, off


def factor_values(model: FactorGNN, g: MatrixGraph) -> tuple[torch.Tensor, torch.Tensor]:
    """Entries of ``L = D^{1/2} \\hat L`` in float64: (diagonal ``(n,)``, lower ``(m,)``)."""
    diag, off = model(g)
    s = g.sqrt_diag
    return s * diag.double(), s[g.lower_row] * off.double()


def factor_matvecs(g: MatrixGraph, diag: torch.Tensor, off: torch.Tensor, x: torch.Tensor
                   ) -> torch.Tensor:
    """``L L^T x`` for ``x`` of shape ``(n, k)`` (differentiable in the entries)."""
    lt = diag[:, None] * x
    lt = lt.index_add(0, g.lower_col, off[:, None] * x[g.lower_row])
    out = diag[:, None] * lt
    return out.index_add(0, g.lower_row, off[:, None] * lt[g.lower_col])


def factor_matrix(g: MatrixGraph, diag: torch.Tensor, off: torch.Tensor) -> sp.csr_matrix:
    """``L`` as a scipy CSR matrix."""
    idx = torch.arange(g.n)
    rows = torch.cat([idx, g.lower_row]).numpy()
    cols = torch.cat([idx, g.lower_col]).numpy()
    vals = torch.cat([diag, off]).detach().numpy()
    return sp.csr_matrix((vals, (rows, cols)), shape=(g.n, g.n))


def data_loss(model: FactorGNN, g: MatrixGraph, x: torch.Tensor, b: torch.Tensor
              ) -> torch.Tensor:
    """The paper's loss on one matrix: mean over columns of ``||L L^T x - b||^2 / ||b||^2``."""
    diag, off = factor_values(model, g)
    res = factor_matvecs(g, diag, off, x) - b
    return ((res**2).sum(0) / (b**2).sum(0)).mean()


def init_weights(model: nn.Module, generator: torch.Generator | None) -> None:
    """PyTorch's default Linear init, drawn from ``generator`` (LayerNorm stays 1/0)."""
    from trainlab.init import apply

    apply(model, "torch-default", generator=generator)


@SOLVERS.register("neural-pcg", papers=(59,), learned=True,
                  summary="learned PCG preconditioner (LL^T)^-1: a GNN on the matrix graph "
                          "predicts L on tril(A)'s pattern, trained on ||LL^T x - b||^2")
class NeuralPCG(LinearSolver):
    """The learned preconditioner of Li et al. (2023) as a solver entry.

    Args:
        hidden: GNN width (paper's code: 128; CPU default 32).
        blocks: message-passing rounds (paper's code: 15; CPU default 6).
        steps: Adam steps (one training matrix and its right-hand sides per step).
        lr: Adam learning rate.
        rhs_per_matrix: right-hand sides per training matrix (the family's forcing plus
            ``rhs_per_matrix - 1`` more smooth random forcings, each solved directly).
    """

    learned = True

    def __init__(self, hidden: int = 32, blocks: int = 6, steps: int = 300, lr: float = 1e-3,
                 rhs_per_matrix: int = 4):
        super().__init__()
        owner = "neural-pcg"
        self.hidden = int(check_range("hidden", hidden, low=1, owner=owner))
        self.blocks = int(check_range("blocks", blocks, low=0, owner=owner))
        self.steps = int(check_range("steps", steps, low=0, owner=owner))
        self.lr = check_range("lr", lr, low=0.0, low_open=True, owner=owner)
        self.rhs_per_matrix = int(check_range("rhs_per_matrix", rhs_per_matrix, low=1,
                                              owner=owner))
        with torch.random.fork_rng(devices=[]):  # construction must not move the global RNG
            self.model = FactorGNN(self.hidden, self.blocks)

    def _data(self, train: list, generator: torch.Generator | None) -> list[tuple]:
        """Per training matrix: its graph, solutions ``(n, k)`` and right-hand sides."""
        from scipy.sparse.linalg import splu

        data = []
        for inst in train:
            bs, xs = [inst.b], [inst.x]
            if self.rhs_per_matrix > 1:
                lu = splu(sp.csc_matrix(inst.A))
                for _ in range(self.rhs_per_matrix - 1):
                    bs.append(inst.family.forcing(generator))
                    xs.append(lu.solve(bs[-1]))
            data.append((MatrixGraph(inst.A), torch.from_numpy(np.stack(xs, 1)),
                         torch.from_numpy(np.stack(bs, 1))))
        return data

    def fit(self, train: list, *, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Train on ``train`` instances (each with ``A``, ``b``, ``x``); returns
        ``{"loss": per-step losses, "seconds": training time}``."""
        start = time.perf_counter()
        init_weights(self.model, generator)
        data = self._data(train, generator)
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        losses = []
        order = torch.randperm(len(data), generator=generator)
        for step in range(self.steps):
            if step and step % len(data) == 0:
                order = torch.randperm(len(data), generator=generator)
            g, x, b = data[int(order[step % len(data)])]
            loss = data_loss(self.model, g, x, b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        self.model.eval()
        return {"loss": losses, "seconds": time.perf_counter() - start}

    def factor(self, A: sp.spmatrix) -> sp.csr_matrix:
        """The learned ``L`` for ``A``."""
        g = MatrixGraph(A)
        with torch.no_grad():
            diag, off = factor_values(self.model, g)
        return factor_matrix(g, diag, off)

    def preconditioner(self, A: sp.spmatrix) -> FactorPreconditioner:
        return FactorPreconditioner(self.factor(A))
