"""The block warm-start oracles of ``benchmarks/sharpness_warm.py --subspace``: Rayleigh-Ritz
expansion and LOBPCG counts, checked on a dense float64 matrix with a known spectrum (two
close top eigenvalues) against ``torch.linalg.eigvalsh`` and the library's Lanczos."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from curvature_reference import DT, close_top_pair

from trainlab.curvature import MatrixOperator, lanczos

ROOT = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_sharpness_warm",
                                                  ROOT / "benchmarks" / "sharpness_warm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_sharpness_warm"] = module
    spec.loader.exec_module(module)
    return module


def test_rayleigh_ritz_expansion_against_eigvalsh_and_lanczos():
    bench = load_bench()
    a, spec, q = close_top_pair()
    lam = torch.linalg.eigvalsh(a)[-1].item()
    assert lam == pytest.approx(1.0, rel=1e-12)
    op = MatrixOperator(a)
    g = torch.Generator().manual_seed(1)
    # the exact top-2 span, mixed by a rotation: one Rayleigh-Ritz on it gives lambda_1
    mix = torch.linalg.qr(torch.randn(2, 2, generator=g, dtype=DT))[0]
    exact = bench.block_start_history(op, q[:, -2:] @ mix, 6)
    assert exact[1] == pytest.approx(lam, rel=1e-12)
    # a perturbed top-2 span: Ritz values of nested spaces rise, stay below lambda_1
    # (interlacing) and reach 1e-3 within the stated 4 products; the expansion stops once
    # the top Ritz pair is exact to rounding (within 30 products here)
    start = q[:, -2:] @ mix + 0.3 * torch.randn(len(spec), 2, generator=g, dtype=DT) / 17
    history = bench.block_start_history(op, start, 30)
    assert len(history) < 30
    assert all(b >= a_ - 1e-12 for a_, b in zip(history, history[1:]))
    assert max(history) <= lam * (1 + 1e-12)
    count = bench.first_within(enumerate(history, 1), lam, 1e-3)
    assert count is not None and count <= 4
    assert history[-1] == pytest.approx(lam, rel=1e-10)
    # from one vector the expansion spans Lanczos's Krylov space: the same Ritz values
    v = torch.randn(len(spec), generator=g, dtype=DT)
    single = bench.block_start_history(op, v[:, None], 8)
    for m in range(1, 9):
        ref = lanczos(op, k=1, tol=1e-14, max_iter=m, v0=v)
        assert single[m - 1] == pytest.approx(ref.values[0].item(), rel=1e-10)


def test_rayleigh_ritz_expansion_stops_on_an_invariant_span():
    bench = load_bench()
    a, _, q = close_top_pair(n=50)
    # the top eigenvector itself: its residual is zero, no new direction exists
    assert bench.block_start_history(MatrixOperator(a), q[:, -1:], 10) == [
        pytest.approx(1.0, rel=1e-12)]
    # a repeated start column adds no product
    twice = torch.cat([q[:, -2:-1], q[:, -2:-1], q[:, -1:]], 1)
    history = bench.block_start_history(MatrixOperator(a), twice, 10)
    assert len(history) == 2 and history[-1] == pytest.approx(1.0, rel=1e-12)


def test_lobpcg_counts_b_products_per_iteration_and_converges():
    bench = load_bench()
    a, spec, q = close_top_pair()
    op = MatrixOperator(a)
    g = torch.Generator().manual_seed(2)
    start = q[:, -2:] + 0.3 * torch.randn(len(spec), 2, generator=g, dtype=DT) / 17
    history = bench.lobpcg_history(op, start, 30)
    assert [m for m, _ in history] == list(range(2, 31, 2))
    assert history[-1][1] == pytest.approx(torch.linalg.eigvalsh(a)[-1].item(), rel=1e-8)
    assert max(v for _, v in history) <= 1.0 + 1e-12
    exact = bench.lobpcg_history(op, q[:, -2:], 4)
    assert exact[0] == (2, pytest.approx(1.0, rel=1e-12))


def test_first_within_and_block_summary():
    bench = load_bench()
    assert bench.first_within([(1, 0.5), (2, 0.9995), (3, 1.0)], 1.0, 1e-3) == 2
    assert bench.first_within([(1, 0.5)], 1.0, 1e-3) is None
    rows = [{"in1": 0.1, "rr1": 3, "lobpcg1": None}, {"in1": 0.3, "rr1": 5, "lobpcg1": 4}]
    figs = bench.block_summary(rows, 1)[1]
    assert figs == {"in_median": pytest.approx(0.2), "rr_median": 4.0, "rr_max": 5,
                    "lobpcg_median": float("inf"), "lobpcg_max": float("inf")}
