"""``benchmarks/deepxde_compare.py`` poses the same problems to DeepXDE as trainlab's: DeepXDE's
PDE residual (its own ``dde.grad`` derivatives) of trainlab's reference solution vanishes, to
the reference's accuracy, for Poisson (k = 1, 4) and Burgers, and is far from zero for a wrong
frequency or viscosity, so the check can fail."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("DDE_BACKEND", "pytorch")
# the default device through a new tensor (torch.get_default_device needs torch >= 2.3)
_device = torch.empty(0).device
dde = pytest.importorskip("deepxde", reason="deepxde is not installed (the `pinn` extra)")
if torch.empty(0).device != _device:  # DeepXDE makes CUDA the default device at import
    torch.set_default_device(None if _device.type == "cpu" else _device)

from trainlab.pinn.problems import build_problem  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    if dde.backend.backend_name != "pytorch":
        pytest.skip(f"deepxde was imported with backend {dde.backend.backend_name!r}")
    spec = importlib.util.spec_from_file_location(
        "bench_deepxde_compare", ROOT / "benchmarks" / "deepxde_compare.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_deepxde_compare"] = module
    spec.loader.exec_module(module)
    return module


def residual(pde, solution, x: torch.Tensor) -> torch.Tensor:
    """DeepXDE's residual ``pde(x, u)`` of ``u = solution(x)``, derivatives by ``dde.grad``."""
    x = x.clone().requires_grad_(True)
    try:
        return pde(x, solution(x)).detach()
    finally:
        dde.grad.clear()


def points(n: int, lower: tuple[float, float], upper: tuple[float, float]) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    lo, hi = torch.tensor(lower, dtype=torch.float64), torch.tensor(upper, dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(n, 2, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("k", [1, 4])
def test_poisson_residual_of_reference_vanishes(bench, k):
    ref = build_problem("poisson", k=k).reference
    x = points(200, (0.0, 0.0), (1.0, 1.0))
    r = residual(bench.poisson_residual(dde, k), ref, x)
    scale = 2 * (k * math.pi) ** 2  # size of the source term
    assert r.abs().max() < 1e-12 * scale
    wrong = residual(bench.poisson_residual(dde, k + 1), ref, x)
    assert wrong.abs().max() > 0.5 * scale


def test_burgers_residual_of_cole_hopf_vanishes(bench):
    ref = build_problem("burgers").reference
    x = points(200, (-1.0, 0.05), (1.0, 1.0))  # DeepXDE's order (x, t); t > 0: sqrt(t) in u
    to_trainlab = lambda xt: xt[:, [1, 0]]  # noqa: E731
    r = residual(bench.burgers_residual(dde), lambda xt: ref(to_trainlab(xt)), x)
    # the size of the PDE's terms at these points, for a relative measure
    u_t = residual(lambda xt, u: dde.grad.jacobian(u, xt, i=0, j=1),
                   lambda xt: ref(to_trainlab(xt)), x)
    assert r.norm() < 1e-10 * u_t.norm()
    wrong = residual(bench.burgers_residual(dde, nu=2 * bench.NU),
                     lambda xt: ref(to_trainlab(xt)), x)
    assert wrong.norm() > 0.1 * u_t.norm()


def test_grid_order_swaps_time_and_space(bench):
    grid = build_problem("burgers").grid.numpy()
    swapped = bench.to_deepxde_order("burgers", grid)
    assert (swapped[:, 0] == grid[:, 1]).all() and (swapped[:, 1] == grid[:, 0]).all()
    assert bench.to_deepxde_order("poisson", grid) is grid
