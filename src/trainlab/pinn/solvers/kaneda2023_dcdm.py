r"""Deep conjugate direction method (DCDM): a convolutional network proposes each search
direction from the current residual; the direction is made A-conjugate to the previous two
and the iterate minimises the energy norm along it (papers.md row 108).

Iteration (the paper's Algorithm 1, with its two-direction orthogonalisation):

.. math::  q_k = f_\theta(r_k / \|r_k\|),\quad
           p_k = q_k - \sum_{j=k-2}^{k-1} \frac{q_k^\top A p_j}{p_j^\top A p_j} p_j,\quad
           x_{k+1} = x_k + \frac{p_k^\top r_k}{p_k^\top A p_k} p_k,\quad r_{k+1} = b - Ax_{k+1},

stopped at :math:`\|r_k\| \le \text{rtol}\,\|b\|`. The network approximates :math:`A^{-1}` up
to a scalar; it is trained unsupervised with the scale-invariant loss

.. math::  \ell(\theta) = \frac1{|B|}\sum_{b \in B}\Big\|b - A\,\frac{q^\top b}{q^\top A q}\,q
           \Big\|_2^2, \qquad q = f_\theta(b),

on unit right-hand sides :math:`b = \sum_i c_i v_i / \|\cdot\|` built from Ritz vectors
:math:`v_i` of ``A`` (``m`` Lanczos steps from ``A`` times a random vector), with
:math:`c_i \sim N(0, 1)` and the lowest ``m/2 + theta`` Ritz vectors weighted 9x, so the data
are dominated by the low end of the spectrum that CG finds hardest.

Network (2-D version of the paper's 3-D one): 16-filter 3x3 convolutions — a linear first
layer, ReLU residual blocks at full resolution, a 2x average-pooled level with three residual
blocks, nearest upsampling added to the full-resolution features, two more residual blocks and
a linear 1x1 output; zero padding matches the homogeneous Dirichlet boundary.

Setting (the paper's): the network is trained for ONE fixed matrix (the authors' code reads a
single training matrix and builds 20,000 Ritz-vector right-hand sides from it) and tested on
new right-hand sides. Here that matrix is the 5-point Dirichlet Poisson matrix, i.e. a
``sigma = 0`` :class:`~trainlab.pinn.solvers.PoissonFamily`, whose instances share the matrix
and differ only in their smooth random right-hand side (``trainlab pinn solvers --method dcdm
--sigma 0 --train 1``; :meth:`DCDM.fit` builds the Ritz data once per distinct matrix). Over
a random-coefficient family (``sigma > 0``) the method is outside its paper's setting.

References:
    Kaneda, Akar, Chen, Kala, Hyde & Teran, "A Deep Conjugate Direction Method for Iteratively
    Solving Linear Systems", ICML 2023 (papers.md row 108): Algorithm 1 (the DCDM iteration,
    orthogonalised against the previous two directions), the scale-invariant loss, the
    Ritz-vector training data; the authors' released code: one training matrix, Adam with
    learning rate 1e-4, batch 10, m = 10,000 Ritz vectors, theta = 500, 20,000 training
    vectors, Keras default initialisation, test tolerance 1e-4 relative to the first residual.

Measured (``python benchmarks/dcdm_fixed.py --n 32 --steps 1000 --seeds 0,1``; shared 2-core
CPU, 1 thread, load about 12; 8 held-out right-hand sides per seed; seed 0 shown, seed 1
within 0.5 iterations of it): 32x32 Poisson, 1000 Adam steps at the paper's lr 1e-4 (258 s;
loss 1.00 -> 0.020). Iterations to 1e-8: DCDM 23.4 +- 1.3, plain CG 101.1 (Jacobi is the
same: the diagonal is constant), IC(0)-PCG 35.8, pyamg AMG-PCG 7.0; to the paper's 1e-4:
DCDM 9.9, CG 69.4, IC(0) 22.1, AMG 4.0. So the paper's headline shows: 4.3x (1e-8) and 7.0x
(1e-4) fewer iterations than CG, fewer than IC(0); AMG needs fewer still, and each DCDM
iteration costs a network evaluation (0.31 s per solve against CG's 0.012 s here).
At 64x64 the same 1000 steps (1125 s; loss 0.055, not 0.020) are NOT enough: to 1e-4 only 3
of 8 held-out right-hand sides converged (16 iterations each; CG 140.6, IC(0) 42.4, AMG 5.0),
to 1e-8 only 1 of 8 (83 iterations; CG 203.4, IC(0) 68.2, AMG 8.0); the others stalled at
the 2000-iteration cap. Unlike PCG's, DCDM's convergence is not guaranteed: the directions
of an imperfect network, made conjugate to two previous directions only, can stall. The
same 64x64 network conjugating against EVERY previous direction (``orthogonalize=10000``,
not the paper's 2; ``benchmarks/dcdm_fixed.py --n 64 --seeds 0 --orthogonalize 2,10000``)
converges on all 8: 38.8 (34-46) iterations to 1e-8 and 19.4 (16-29) to 1e-4, i.e. 5.2x
and 7.3x fewer than CG, 1.8x and 2.2x fewer than IC(0). At 32x32 after 400 steps (loss
0.048; ``trainlab pinn solvers --method dcdm --n 32 --sigma 0 --train 1 -p steps=400 -p
orthogonalize=10000``) full orthogonalisation gives 39-42 iterations to 1e-8 against 57-67
with two (and 78-98 with five).
Before (trained over the random-coefficient family, 200 steps at lr 1e-3, PyTorch's default
init): no held-out system converged in 2,000 iterations.

Deviations from the paper:
    - 2-D grids (32x32, 64x64) instead of 3-D (64^3, 128^3) and the Dirichlet Poisson matrix
      instead of the paper's fluid-pressure matrices (singular: the authors' data code skips
      the zero Ritz values); tested on one grid, not transferred to larger grids or to matrices with
      interior boundaries as in the paper's generalisation experiments.
    - Lanczos ``m = 256`` Ritz vectors and ``theta = m/20`` (the paper: m = 10,000, theta = 500
      at 64^3+); 2,000 training vectors (``samples``; the paper 20,000), about 1,000 Adam steps
      on a CPU instead of many epochs on a GPU.
    - ``orthogonalize`` (default the paper's 2) may be raised to conjugate against more
      previous directions (full orthogonalisation: an extension, kept off by default).
    - Over a ``sigma > 0`` family the Ritz data of each distinct training matrix are used in
      turn (an extension; as in the paper the network sees only the residual, never the
      coefficients, unless ``coefficient_input``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from trainlab.errors import ConfigError, check_range
from trainlab.pinn.solvers._method import SOLVERS, LinearSolver
from trainlab.pinn.solvers.pcg import SolveResult

log = logging.getLogger("trainlab")


class DCDMNet(nn.Module):
    """The residual CNN ``r -> q`` (one channel in, one out, ``filters`` wide)."""

    def __init__(self, filters: int = 16, inputs: int = 1):
        super().__init__()

        def conv() -> nn.Conv2d:
            return nn.Conv2d(filters, filters, 3, padding=1)

        self.first = nn.Conv2d(inputs, filters, 3, padding=1)
        self.fine = nn.ModuleList(conv() for _ in range(4))
        self.coarse = nn.ModuleList(conv() for _ in range(6))
        self.up = nn.ModuleList(conv() for _ in range(4))
        self.last = nn.Conv2d(filters, 1, 1)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r``: ``(batch, inputs, n, n)``; returns ``q``: ``(batch, 1, n, n)``."""
        c = self.first(r)
        la = F.relu(self.fine[0](c))
        lb = F.relu(self.fine[1](la))
        la = F.relu(self.fine[2](lb)) + la
        lb = F.relu(self.fine[3](la))
        apa = F.avg_pool2d(lb, 2, ceil_mode=True)
        for i in range(0, 6, 2):
            apb = F.relu(self.coarse[i](apa))
            apa = F.relu(self.coarse[i + 1](apb)) + apa
        upa = F.interpolate(apa, size=lb.shape[-2:], mode="nearest") + lb
        for i in range(0, 4, 2):
            upb = F.relu(self.up[i](upa))
            upa = F.relu(self.up[i + 1](upb)) + upa
        return self.last(upa)


def init_keras_default(model: nn.Module, generator: torch.Generator | None) -> None:
    """The authors' code's initialisation (Keras defaults): Glorot-uniform kernels, zero
    biases, drawn from ``generator``."""
    from trainlab.init import apply

    apply(model, "xavier-uniform", generator=generator)


def _same_matrix(A: sp.spmatrix, B: sp.spmatrix) -> bool:
    return A.shape == B.shape and (sp.csr_matrix(A) != sp.csr_matrix(B)).nnz == 0


def ritz_vectors(A: sp.spmatrix, m: int, generator: torch.Generator | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``m`` Ritz pairs of ``A`` from ``m`` Lanczos steps (full reorthogonalisation) started
    at ``A z``, ``z ~ N(0, I)``: values ascending ``(m,)`` and vectors ``(m, N)``."""
    n = A.shape[0]
    m = min(m, n)
    z = torch.randn(n, generator=generator, dtype=torch.float64).numpy()
    v = A @ z
    W = np.zeros((m, n))
    alpha, beta = np.zeros(m), np.zeros(max(m - 1, 0))
    W[0] = v / np.linalg.norm(v)
    for k in range(m):
        w = A @ W[k]
        alpha[k] = W[k] @ w
        w -= W[:k + 1].T @ (W[:k + 1] @ w)          # full reorthogonalisation (twice)
        w -= W[:k + 1].T @ (W[:k + 1] @ w)
        if k + 1 < m:
            beta[k] = np.linalg.norm(w)
            if beta[k] < 1e-12:
                m = k + 1
                break
            W[k + 1] = w / beta[k]
    T = np.diag(alpha[:m]) + np.diag(beta[:m - 1], 1) + np.diag(beta[:m - 1], -1)
    vals, Q = np.linalg.eigh(T)
    return vals, Q.T @ W[:m]


def ritz_rhs(vectors: np.ndarray, count: int, theta: int, generator: torch.Generator | None
             ) -> np.ndarray:
    """``count`` unit right-hand sides ``(count, N)``: random combinations of the Ritz
    vectors (ascending), the lowest ``m/2 + theta`` weighted 9x."""
    m = vectors.shape[0]
    coef = torch.randn(count, m, generator=generator, dtype=torch.float64).numpy()
    coef[:, :min(m, m // 2 + theta)] *= 9.0
    b = coef @ vectors
    return b / np.linalg.norm(b, axis=1, keepdims=True)


def _torch_sparse(A: sp.spmatrix, dtype: torch.dtype) -> torch.Tensor:
    coo = sp.coo_matrix(A)
    idx = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(coo.data).to(dtype), coo.shape,
                                   check_invariants=False).coalesce()


def dcdm_loss(q: torch.Tensor, b: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """The scale-invariant loss for columns ``q, b`` of shape ``(N, batch)``, ``A`` sparse."""
    Aq = torch.sparse.mm(A, q)
    scale = (q * b).sum(0) / (q * Aq).sum(0)
    return ((b - Aq * scale) ** 2).sum(0).mean()


@SOLVERS.register("dcdm", papers=(108,), learned=True,
                  summary="deep conjugate directions: a CNN proposes each search direction "
                          "from the residual, A-conjugated to the last two")
class DCDM(LinearSolver):
    """Deep conjugate direction method (Kaneda et al., 2023) as a solver entry.

    Args:
        filters: CNN width (paper: 16).
        steps: Adam steps (``batch`` right-hand sides of one training matrix per step; 1000
            takes about 4 CPU minutes at 32x32, 1 thread, on a loaded machine).
        lr: Adam learning rate (paper: 1e-4).
        batch: right-hand sides per step (paper: 10).
        ritz: Lanczos steps / Ritz vectors per training matrix.
        theta: extra low Ritz vectors weighted 9x beyond ``ritz/2`` (default ``ritz // 20``).
        samples: right-hand sides drawn per training matrix (paper: 20,000).
        coefficient_input: also feed the network ``log(A_ii / mean diag)`` as a second
            channel, so it can see the coefficients (not in the paper, whose matrix is fixed;
            off by default).
        orthogonalize: how many previous directions each new one is A-orthogonalised against
            (paper: 2; a number >= the iteration count gives full orthogonalisation, at
            the memory of that many vectors; 0 gives preconditioned steepest descent).
    """

    learned = True

    def __init__(self, filters: int = 16, steps: int = 1000, lr: float = 1e-4, batch: int = 10,
                 ritz: int = 256, theta: int | None = None, samples: int = 2000,
                 coefficient_input: bool = False, orthogonalize: int = 2):
        super().__init__()
        owner = "dcdm"
        self.filters = int(check_range("filters", filters, low=1, owner=owner))
        self.steps = int(check_range("steps", steps, low=0, owner=owner))
        self.lr = check_range("lr", lr, low=0.0, low_open=True, owner=owner)
        self.batch = int(check_range("batch", batch, low=1, owner=owner))
        self.ritz = int(check_range("ritz", ritz, low=2, owner=owner))
        self.theta = self.ritz // 20 if theta is None else int(
            check_range("theta", theta, low=0, owner=owner))
        self.samples = int(check_range("samples", samples, low=1, owner=owner))
        self.coefficient_input = bool(coefficient_input)
        self.orthogonalize = int(check_range("orthogonalize", orthogonalize, low=0,
                                             owner=owner))
        self._channel: torch.Tensor | None = None
        with torch.random.fork_rng(devices=[]):  # construction must not move the global RNG
            self.model = DCDMNet(self.filters, 2 if self.coefficient_input else 1)

    def fit(self, train: list, *, generator: torch.Generator | None = None) -> dict[str, Any]:
        """Train on the Ritz-vector data of each distinct training matrix (one matrix in the
        paper's setting: the instances of a ``sigma = 0`` family all share it); returns
        ``{"loss": per-step losses, "seconds": training time, "matrices": distinct
        matrices}``."""
        start = time.perf_counter()
        init_keras_default(self.model, generator)
        data, seen = [], []
        for inst in train:
            if any(_same_matrix(inst.A, B) for B in seen):
                continue
            seen.append(inst.A)
            _, vecs = ritz_vectors(inst.A, self.ritz, generator)
            rhs = torch.from_numpy(ritz_rhs(vecs, self.samples, self.theta, generator)).float()
            data.append((_torch_sparse(inst.A, torch.float32), rhs, inst.n,
                         self._coefficient_channel(inst.A)))
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.model.train()
        losses = []
        for step in range(self.steps):
            A, rhs, n, chan = data[step % len(data)]
            pick = torch.randint(rhs.shape[0], (self.batch,), generator=generator)
            b = rhs[pick]                                        # (batch, N)
            q = self.model(self._inputs(b.view(-1, 1, n, n), chan)).view(self.batch, -1)
            loss = dcdm_loss(q.T, b.T, A)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        self.model.eval()
        return {"loss": losses, "seconds": time.perf_counter() - start,
                "matrices": len(data)}

    def _coefficient_channel(self, A: sp.spmatrix) -> torch.Tensor | None:
        if not self.coefficient_input:
            return None
        d = np.asarray(A.diagonal(), dtype=np.float64)
        n = int(round(np.sqrt(d.shape[0])))
        return torch.from_numpy(np.log(d / d.mean())).float().view(1, 1, n, n)

    @staticmethod
    def _inputs(r: torch.Tensor, chan: torch.Tensor | None) -> torch.Tensor:
        if chan is None:
            return r
        return torch.cat([r, chan.expand(r.shape[0], -1, -1, -1)], 1)

    def direction(self, r: np.ndarray) -> np.ndarray:
        """The network's direction for a residual (float32 network, float64 out)."""
        n = int(round(np.sqrt(r.shape[0])))
        if n * n != r.shape[0]:
            raise ConfigError(f"dcdm works on square grids; got {r.shape[0]} unknowns")
        with torch.no_grad():
            q = self.model(self._inputs(torch.from_numpy(r).float().view(1, 1, n, n),
                                        self._channel))
        return q.view(-1).double().numpy()

    def solve(self, A: sp.spmatrix, b: np.ndarray, *, rtol: float = 1e-8,
              maxiter: int | None = None) -> SolveResult:
        """DCDM iterations until ``||b - A x|| <= rtol ||b||`` (true residual)."""
        check_range("rtol", rtol, low=0.0, low_open=True, owner="dcdm")
        b = np.asarray(b, dtype=np.float64)
        maxiter = 10 * b.shape[0] if maxiter is None else maxiter
        start = time.perf_counter()
        self._channel = self._coefficient_channel(A)
        self.setup_seconds = time.perf_counter() - start
        start = time.perf_counter()
        bnorm = float(np.linalg.norm(b)) or 1.0
        x = np.zeros_like(b)
        r = b.copy()
        history = [np.linalg.norm(r) / bnorm]
        prev: list[tuple[np.ndarray, np.ndarray, float]] = []     # (p, Ap, p^T A p)
        k = 0
        while history[-1] > rtol and k < maxiter:
            q = self.direction(r / (history[-1] * bnorm))
            for p, Ap, pAp in prev:
                q -= (q @ Ap) / pAp * p
            Aq = A @ q
            qAq = float(q @ Aq)
            if not qAq > 0:
                log.warning("dcdm: a direction with q^T A q = %.3g; stopping", qAq)
                break
            x += (q @ r) / qAq * q
            r = b - A @ x
            prev = (prev + [(q, Aq, qAq)])[-self.orthogonalize:] if self.orthogonalize else []
            k += 1
            history.append(np.linalg.norm(r) / bnorm)
        converged = history[-1] <= rtol
        if not converged:
            log.warning("dcdm: no convergence to rtol %.1e in %d iterations (reached %.2e)",
                        rtol, k, history[-1])
        return SolveResult(x, k, np.asarray(history), converged, time.perf_counter() - start)
