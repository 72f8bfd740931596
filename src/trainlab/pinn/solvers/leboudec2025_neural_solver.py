r"""A physics-informed learned iterative solver over a PDE-parameter family: the solution is
a B-spline expansion :math:`u_\theta = \sum_k \theta_k B_k`, and ``L`` unrolled steps
:math:`\theta_{l+1} = \theta_l - \eta\, P_\phi\big(\theta_l, \widehat{\nabla_\theta
\mathcal L}(\theta_l), \gamma\big)` of a learned update network :math:`P_\phi` (a 1-D Fourier
neural operator over the coefficient index) minimise the physics loss
:math:`\mathcal L(\theta; \gamma)` of each instance (papers.md row 4).

Family (the paper's default data set, 1-D Helmholtz): for parameters
:math:`\gamma = (\omega, u_b, g_b)`,

.. math::  u'' + \omega^2 u = 0 \ \text{on } (0, 1), \quad u(0) = u_b,\ u'(0) = g_b,
           \qquad u = \alpha\cos(\omega x + \beta) \ \text{(exact)},

with :math:`\omega \sim U(0.5, 10)` and :math:`u_b, g_b \sim U(-1, 1)`. Physics loss (Riemann
sum on the 256-point grid, boundary weight ``lbd = 1``):

.. math::  \mathcal L(\theta) = \Delta x \sum_i \big(u_\theta''(x_i) + \omega^2
           u_\theta(x_i)\big)^2 + \tfrac{\lambda}{2}\big[(u_\theta(0) - u_b)^2 +
           (u_\theta'(0) - g_b)^2\big] = \theta^\top H\theta - 2g^\top\theta + c,

a quadratic whose Hessian is badly conditioned (the ill-conditioning the learned update
addresses). The gradient fed to the network is normalised to unit norm (the paper code's
``theta_comp: normalized``); :math:`\eta = 1`; :math:`\theta_0` is a fixed random vector
(:math:`N(0, 0.1)`, first entry 0). Training: Adam on the L1 distance between
:math:`u_{\theta_L}` and the exact solution on the grid, back-propagated through the ``L``
steps.

The paper's claim, measured by :func:`compare_helmholtz`: after ``L = 5`` learned steps the
solution error on held-out parameters is far below that of classical iterative methods on the
same loss with the same number of steps — gradient descent (step ``1/lambda_max(H)``) and
conjugate gradients on the normal equations :math:`H\theta = g` — and the table also shows how
many steps those classical methods need, and the direct solve (the basis' error floor).

References:
    Le Boudec, de Bézenac, Serrano, Regueiro-Espino, Yin & Gallinari, "Learning a Neural
    Solver for Parametric PDE to Enhance Physics-Informed Methods", ICLR 2025 (papers.md
    row 4): the unrolled update, B-spline basis (N = 32, cubic), L = 5, FNO (3 Fourier layers,
    64 channels, 16 modes), inner learning rate 1, Adam 1e-3, batch 50, 800 train / 200 test,
    1500 epochs, L1 training criterion (the authors' code defaults). Li et al., "Fourier
    Neural Operator for Parametric PDEs", ICLR 2021 (the FNO layer).

Measured (``trainlab pinn neural-solver --train 200 --epochs 100``, seed 0, 200 held-out
draws, paper architecture): relative L2 error 0.18 after the 5 learned steps (0.41 after 30
epochs), against 1.31 (GD) and 1.12 (CG) after 5 steps; GD is still at 1.07 after 1,000
steps, CG reaches the basis' floor 0.0215 (the direct solve) by 100 steps. The claim (better
than the classical iterations at equal step count) holds; the learned error is 8x above the
floor after 100 of the paper's 1,500 epochs on a quarter of its training set.

Deviations from the paper:
    - Network inputs: theta, the normalised gradient and the parameters broadcast over the
      coefficient axis (the paper's code selects inputs by flags whose per-experiment values
      are not in its default config).
    - omega ~ U(0.5, 10), the range of the code's ``helmholtz`` data config (its default
      ``helmholtz-hf`` goes to omega = 50).
    - Clamped uniform cubic B-splines (the paper's code has a "shifted" knot layout); the
      distribution of ``u_b, g_b`` is ours (U(-1, 1)); the exact solution is the reference
      instead of the authors' stored data set.
    - The FNO is written here (no FNO package is a trainlab dependency): lift, 3 spectral
      layers with a pointwise skip and GELU, projection; fewer epochs on a CPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.errors import check_range
from trainlab.pinn.solvers._method import SOLVERS


def bspline_basis(count: int = 32, degree: int = 3, points: int = 256
                  ) -> dict[str, torch.Tensor]:
    """Clamped uniform B-splines on [0, 1]: values and second derivatives on ``points``
    uniform grid points (``(points, count)``), and value / first derivative at ``x = 0``."""
    from scipy.interpolate import BSpline

    inner = np.linspace(0.0, 1.0, count - degree + 1)
    knots = np.concatenate([[0.0] * degree, inner, [1.0] * degree])
    x = np.linspace(0.0, 1.0, points)
    eye = np.eye(count)
    funcs = [BSpline(knots, eye[k], degree, extrapolate=False) for k in range(count)]
    val = np.stack([np.nan_to_num(f(x)) for f in funcs], 1)
    d2 = np.stack([np.nan_to_num(f.derivative(2)(x)) for f in funcs], 1)
    b0 = np.array([f(0.0) for f in funcs])
    d0 = np.array([f.derivative(1)(0.0) for f in funcs])
    t = {"x": x, "val": val, "d2": d2, "b0": b0, "d0": d0}
    return {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in t.items()}


def helmholtz_params(count: int, generator: torch.Generator | None) -> torch.Tensor:
    """``(count, 3)`` parameters ``(omega, u_b, g_b)``: omega ~ U(0.5, 10), u_b, g_b ~ U(-1, 1)."""
    r = torch.rand(count, 3, generator=generator, dtype=torch.float64)
    return torch.stack([0.5 + 9.5 * r[:, 0], 2 * r[:, 1] - 1, 2 * r[:, 2] - 1], 1)


def helmholtz_exact(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``u = u_b cos(omega x) + (g_b / omega) sin(omega x)`` on ``x``: ``(batch, points)``."""
    w, ub, gb = params[:, :1], params[:, 1:2], params[:, 2:3]
    return ub * torch.cos(w * x) + gb / w * torch.sin(w * x)


def quadratic(params: torch.Tensor, basis: dict[str, torch.Tensor], lbd: float = 1.0
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(H, g)`` with ``L(theta) = theta^T H theta - 2 g^T theta + c`` per instance:
    ``(batch, N, N)`` and ``(batch, N)``."""
    w2 = params[:, 0] ** 2
    dx = float(basis["x"][1] - basis["x"][0])
    R = basis["d2"][None] + w2[:, None, None] * basis["val"][None]          # (B, P, N)
    b0, d0 = basis["b0"], basis["d0"]
    H = dx * R.transpose(1, 2) @ R + 0.5 * lbd * (torch.outer(b0, b0) + torch.outer(d0, d0))
    g = 0.5 * lbd * (params[:, 1:2] * b0 + params[:, 2:3] * d0)
    return H, g


class SpectralConv1d(nn.Module):
    """The Fourier layer: FFT, a learned complex linear map on the lowest ``modes``, iFFT."""

    def __init__(self, channels: int, modes: int):
        super().__init__()
        self.modes = modes
        scale = 1.0 / (channels * channels)
        self.weight = nn.Parameter(scale * torch.ones(channels, channels, modes, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = torch.fft.rfft(x)
        m = min(self.modes, xf.shape[-1])
        w = torch.view_as_complex(self.weight[..., :m, :].contiguous())
        out = torch.zeros_like(xf)
        out[..., :m] = torch.einsum("bim,iom->bom", xf[..., :m], w)
        return torch.fft.irfft(out, n=x.shape[-1])


class FNO1d(nn.Module):
    """Lift (pointwise), ``layers`` x (spectral conv + pointwise conv, GELU), project."""

    def __init__(self, inputs: int, width: int = 64, modes: int = 16, layers: int = 3,
                 fc: int = 64):
        super().__init__()
        self.lift = nn.Conv1d(inputs, width, 1)
        self.spectral = nn.ModuleList(SpectralConv1d(width, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in range(layers))
        self.proj = nn.Sequential(nn.Conv1d(width, fc, 1), nn.GELU(), nn.Conv1d(fc, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lift(x)
        for k, (s, p) in enumerate(zip(self.spectral, self.pointwise)):
            h = s(h) + p(h)
            if k < len(self.spectral) - 1:
                h = nn.functional.gelu(h)
        return self.proj(h)


@dataclass(frozen=True)
class HelmholtzComparison:
    """Relative L2 errors (mean over held-out instances) per method and step count."""

    rows: tuple[tuple[str, int, float], ...]
    training: dict[str, Any]

    def error(self, method: str, steps: int) -> float:
        return next(e for m, s, e in self.rows if m == method and s == steps)


@SOLVERS.register("neural-parametric-solver", papers=(4,), learned=True, family="helmholtz-1d",
                  summary="physics-informed learned iterative solver: an FNO maps (theta, "
                          "grad of the physics loss, PDE parameters) to L unrolled updates")
class NeuralParametricSolver:
    """The learned iterative solver of Le Boudec et al. (2025) on the 1-D Helmholtz family.

    Args:
        steps: unrolled update steps ``L`` (paper 5).
        basis: B-spline functions ``N`` (paper 32).
        width, modes, layers: FNO size (paper 64, 16, 3).
        epochs, batch, lr: Adam training (paper 1500, 50, 1e-3).
        inner_lr: the step size eta (paper 1).
    """

    learned = True

    def __init__(self, steps: int = 5, basis: int = 32, width: int = 64, modes: int = 16,
                 layers: int = 3, epochs: int = 1500, batch: int = 50, lr: float = 1e-3,
                 inner_lr: float = 1.0):
        owner = "neural-parametric-solver"
        self.steps = int(check_range("steps", steps, low=1, owner=owner))
        self.epochs = int(check_range("epochs", epochs, low=0, owner=owner))
        self.batch = int(check_range("batch", batch, low=1, owner=owner))
        self.lr = check_range("lr", lr, low=0.0, low_open=True, owner=owner)
        self.inner_lr = check_range("inner_lr", inner_lr, low=0.0, low_open=True, owner=owner)
        check_range("basis", basis, low=4, owner=owner)
        self.basis = bspline_basis(int(basis))
        with torch.random.fork_rng(devices=[]):  # construction must not move the global RNG
            self.model = FNO1d(5, width, modes, layers).double()
        self.theta0 = torch.zeros(int(basis), dtype=torch.float64)

    def run(self, params: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """The coefficients after ``steps`` (default ``L``) learned updates: ``(batch, N)``."""
        H, g = quadratic(params, self.basis)
        theta = self.theta0.expand(params.shape[0], -1)
        feats = params[:, :, None].expand(-1, -1, theta.shape[1])
        for _ in range(self.steps if steps is None else steps):
            grad = 2 * (torch.einsum("bij,bj->bi", H, theta) - g)
            grad = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-30)
            x = torch.cat([theta[:, None], grad[:, None], feats], 1)
            theta = theta - self.inner_lr * self.model(x)[:, 0]
        return theta

    def fit(self, train: torch.Tensor, *, generator: torch.Generator | None = None
            ) -> dict[str, Any]:
        """Train on parameters ``train`` ``(count, 3)``; returns per-epoch mean L1 losses."""
        from trainlab.pinn.solvers.li2023_neural_pcg import init_weights

        start = time.perf_counter()
        init_weights(self.model, generator)
        with torch.no_grad():
            for s in self.model.spectral:
                s.weight.uniform_(0.0, 1.0 / s.weight.shape[0] ** 2, generator=generator)
        self.theta0 = math.sqrt(0.1) * torch.randn(self.theta0.shape[0], generator=generator,
                                                   dtype=torch.float64)
        self.theta0[0] = 0.0
        u_true = helmholtz_exact(train, self.basis["x"])
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        losses = []
        for _ in range(self.epochs):
            order = torch.randperm(train.shape[0], generator=generator)
            total = 0.0
            for k in range(0, train.shape[0], self.batch):
                idx = order[k:k + self.batch]
                u = self.run(train[idx]) @ self.basis["val"].T
                loss = (u - u_true[idx]).abs().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            losses.append(total / train.shape[0])
        return {"loss": losses, "seconds": time.perf_counter() - start}


def relative_error(theta: torch.Tensor, params: torch.Tensor, basis: dict[str, torch.Tensor]
                   ) -> float:
    """Mean over instances of ``||u_theta - u|| / ||u||`` on the grid."""
    u = theta @ basis["val"].T
    ref = helmholtz_exact(params, basis["x"])
    return float(((u - ref).norm(dim=1) / ref.norm(dim=1)).mean())


def classical_iterates(params: torch.Tensor, theta0: torch.Tensor, basis: dict, steps: int,
                       method: str) -> torch.Tensor:
    """``steps`` iterations of gradient descent (step ``1/(2 lambda_max)``) or conjugate
    gradients on ``H theta = g`` from ``theta0``: ``(batch, N)``."""
    H, g = quadratic(params, basis)
    theta = theta0.expand(params.shape[0], -1).clone()
    if method == "gd":
        lam = torch.linalg.eigvalsh(H)[:, -1:]
        for _ in range(steps):
            theta = theta - (torch.einsum("bij,bj->bi", H, theta) - g) / lam
        return theta
    r = g - torch.einsum("bij,bj->bi", H, theta)
    p = r.clone()
    rr = (r * r).sum(1, keepdim=True)
    for _ in range(steps):
        Hp = torch.einsum("bij,bj->bi", H, p)
        alpha = rr / (p * Hp).sum(1, keepdim=True).clamp_min(1e-300)
        theta = theta + alpha * p
        r = r - alpha * Hp
        rr_new = (r * r).sum(1, keepdim=True)
        p = r + rr_new / rr.clamp_min(1e-300) * p
        rr = rr_new
    return theta


def compare_helmholtz(solver: NeuralParametricSolver | None = None, *, train: int = 800,
                      test: int = 200, seed: int = 0,
                      classical_steps: tuple[int, ...] = (5, 32, 100, 1000)
                      ) -> HelmholtzComparison:
    """Train ``solver`` (default: the paper's settings) on ``train`` parameter draws, then
    the relative L2 error on ``test`` held-out draws: learned (``L`` steps), GD and CG (each
    step count in ``classical_steps``) from the same ``theta_0``, and the direct solve."""
    gen = torch.Generator().manual_seed(seed)
    solver = solver or NeuralParametricSolver()
    p_train = helmholtz_params(train, gen)
    p_test = helmholtz_params(test, gen)
    log = solver.fit(p_train, generator=gen)
    B = solver.basis
    rows = []
    with torch.no_grad():
        rows.append(("learned", solver.steps,
                     relative_error(solver.run(p_test), p_test, B)))
        for method in ("gd", "cg"):
            for k in classical_steps:
                th = classical_iterates(p_test, solver.theta0, B, k, method)
                rows.append((method, k, relative_error(th, p_test, B)))
        H, g = quadratic(p_test, B)
        rows.append(("direct", 0, relative_error(torch.linalg.solve(H, g), p_test, B)))
    return HelmholtzComparison(tuple(rows), log)
