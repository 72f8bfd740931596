"""rich-lazy-connectivity (row 68): the rank truncation, the alignment, the recurrent-weight
tangent kernel against per-output autograd gradients, the task, the trend check on
hand-made runs, and 2 worker processes giving exactly the serial runs."""

from __future__ import annotations

import numpy as np
import torch

from trainlab.models import build_model
from trainlab.phenomena._base import map_runs
from trainlab.phenomena.liu2024_rich_lazy import (
    RichLazyConnectivity,
    cosine_alignment,
    perceptual_decision_trials,
    rank_run,
    recurrent_kernel,
    truncated_same_norm,
)


def test_truncation_keeps_rank_and_norm():
    w = torch.randn(12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for r in (1, 3, 12):
        low = truncated_same_norm(w, r)
        assert np.linalg.matrix_rank(low.numpy(), tol=1e-8) == r
        assert abs(float(low.norm() - w.norm())) < 1e-10
    u, s, vt = np.linalg.svd(w.numpy())
    ref = s[0] * np.outer(u[:, 0], vt[0])
    assert np.allclose(truncated_same_norm(w, 1).numpy(), ref * np.linalg.norm(w) / s[0])


def test_cosine_alignment():
    a = torch.randn(5, 5, generator=torch.Generator().manual_seed(1))
    assert abs(cosine_alignment(a, 3 * a) - 1) < 1e-6
    b = torch.randn(5, 5, generator=torch.Generator().manual_seed(2))
    ref = float(np.sum(a.numpy() * b.numpy()) / np.linalg.norm(a) / np.linalg.norm(b))
    assert abs(cosine_alignment(a, b) - ref) < 1e-6


def test_recurrent_kernel_matches_per_output_gradients():
    torch.manual_seed(0)
    model = build_model("rnn", (4, 3), 3, hidden=6, nonlinearity="relu", bias=False,
                        readout="all").double()
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    k = recurrent_kernel(model, x)
    out = model(x).reshape(-1)
    rows = [torch.autograd.grad(o, model.recurrent_weight, retain_graph=True)[0].reshape(-1)
            for o in out]
    j = torch.stack(rows)
    assert k.shape == (24, 24)
    assert torch.allclose(k, j @ j.T, atol=1e-10)
    assert all(p.requires_grad for p in model.parameters())  # restored


def test_perceptual_decision_trials():
    x, y = perceptual_decision_trials(4000, torch.Generator().manual_seed(0))
    assert x.shape == (4000, 8, 3) and y.shape == (4000, 8)
    assert torch.all(x[:, :-1, 0] == 1) and torch.all(x[:, -1] == 0)
    assert torch.all(y[:, :-1] == 0) and set(y[:, -1].tolist()) == {1, 2}
    evidence = (x[:, :-1, 1] - x[:, :-1, 2]).mean(1)  # channel 1 stronger for side 0
    right = (evidence > 0) == (y[:, -1] == 1)
    assert 0.8 < right.float().mean() < 0.95  # a fifth of the trials have coherence 0


def _data(wc, ka, ra, acc=0.86):
    ranks, seeds = [1, 30, 100], [0, 1, 2]
    rng = np.random.default_rng(0)
    runs = {}
    for sd in seeds:
        for i, r in enumerate(ranks):
            runs[f"{r}@{sd}"] = {"weight_change": wc[i] + 0.01 * rng.standard_normal(),
                                 "kernel_alignment": ka[i] + 0.01 * rng.standard_normal(),
                                 "rep_alignment": ra[i] + 0.01 * rng.standard_normal(),
                                 "accuracy": acc}
    return {"ranks": ranks, "seeds": seeds, "runs": runs}


def test_check_on_hand_made_runs():
    lazier = _data([1.2, 1.0, 0.8], [0.2, 0.5, 0.7], [0.6, 0.9, 0.99])
    assert all(c.passed for c in RichLazyConnectivity().check(lazier))
    flat = RichLazyConnectivity().check(_data([1.0, 1.0, 1.0], [0.2, 0.5, 0.7],
                                              [0.6, 0.9, 0.99]))
    assert not flat[0].passed and flat[1].passed
    unlearned = RichLazyConnectivity().check(_data([1.2, 1.0, 0.8], [0.2, 0.5, 0.7],
                                                   [0.6, 0.9, 0.99], acc=0.5))
    assert not unlearned[-1].passed



def test_parallel_runs_are_bit_identical_to_serial():
    # full mode's worker processes: each (seed, rank) run redraws its seed's W0, input and
    # readout weights and probe set, so 2 processes give the serial numbers exactly
    jobs = {"1@0": (0, 1, 3, 2), "300@100": (100, 300, 3, 2), "300@0": (0, 300, 3, 2)}
    serial = map_runs(rank_run, jobs, processes=1)
    assert map_runs(rank_run, jobs, processes=2) == serial
    assert list(serial) == list(jobs)
    assert serial["1@0"] != serial["300@0"] != serial["300@100"]
