"""Spectral plasticity (row 47): the check against hand-made accuracy and singular-value
curves on both sides of each threshold (the regularizer itself is tested in tests/models)."""

from __future__ import annotations

from trainlab.phenomena.lewandowski2025_spectral_plasticity import SpectralPlasticity


def _run(last: float, sigma0: float, sigma_end: float) -> dict:
    return {"accuracy": [0.9, 0.9, 0.9, 0.8, last, last, last],
            "sigma_max": [sigma0] * 6 + [sigma_end], "sigma0": sigma0}


def _data(base_last: float, spec_last: float, spec_sigma: float, base_sigma: float,
          seeds: int = 3) -> dict:
    return {"baseline": [_run(base_last, 4.0, base_sigma)] * seeds,
            "spectral": [_run(spec_last, 4.0, spec_sigma)] * seeds}


def test_check_thresholds():
    phen = SpectralPlasticity()
    checks = phen.check(_data(0.5, 0.88, 3.0, 12.0))
    assert all(c.passed for c in checks) and all(c.seeds == 3 for c in checks)
    passed = [c.passed for c in phen.check(_data(0.75, 0.8, 5.5, 3.5))]
    # drop 0.15 < 0.2; spectral drop 0.1 > 0.05; gap 0.05 < 0.2; spectral sigma moved away
    # from 1 (4 -> 5.5); baseline sigma moved towards 1 (4 -> 3.5)
    assert passed == [False, False, False, False, False]


def test_gap_must_exceed_its_seed_spread():
    data = _data(0.5, 0.88, 3.0, 12.0)
    data["spectral"] = [_run(0.88, 4.0, 3.0), _run(0.88, 4.0, 3.0), _run(0.1, 4.0, 3.0)]
    data["baseline"] = [_run(0.5, 4.0, 12.0), _run(0.5, 4.0, 12.0), _run(0.05, 4.0, 12.0)]
    gap = SpectralPlasticity().check(data)[2]  # gaps 0.38, 0.38, 0.05: mean 0.27, spread 0.165
    assert gap.passed
    data["spectral"][2] = _run(0.05, 4.0, 3.0)  # gaps 0.38, 0.38, 0.0: mean 0.253 > 0.19
    assert SpectralPlasticity().check(data)[2].passed
    data["baseline"][0] = _run(0.88, 4.0, 12.0)  # gaps 0, 0.38, 0: mean 0.127 < 0.2
    assert not SpectralPlasticity().check(data)[2].passed


def _alone(phen: SpectralPlasticity, regularize: bool, seed: int, tasks: int, steps: int):
    """One run by itself, the plain loop: its own model, Adam, regularizer and generator."""
    import torch
    import torch.nn.functional as F

    from trainlab.init import apply as init_apply
    from trainlab.models import build_model
    from trainlab.models.spectral_regularizer import SpectralRegularizer
    from trainlab.optim import build_optimizer

    x = torch.randn(phen.N, phen.DIM, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    model = build_model("mlp", (phen.DIM,), phen.CLASSES, depth=2, width=128)
    init_apply(model, "kaiming-normal", generator=g)
    opt = build_optimizer("adam", model.parameters(), lr=1e-3)
    reg = SpectralRegularizer(k=2.0, generator=g) if regularize else None
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    accuracy, sigma = [], []
    for _ in range(tasks):
        y = torch.randint(0, phen.CLASSES, (phen.N,), generator=g)
        for _ in range(steps):
            idx = torch.randint(0, phen.N, (64,), generator=g)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            if reg is not None:
                loss = loss + phen.STRENGTH * reg(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            accuracy.append((model(x).argmax(1) == y).float().mean().item())
            sigma.append(max(torch.linalg.matrix_norm(m.weight, ord=2).item() for m in layers))
    return accuracy, sigma


def test_stacked_runs_equal_the_runs_done_alone():
    # both arms of two seeds trained together (trainlab.train.stacked) against each run
    # alone: same end-of-task accuracies (to one example of 512) and sigma_max to float32
    # round-off (the batched power iteration rounds differently from the per-run one)
    phen, seeds, tasks, steps = SpectralPlasticity(), [0, 100], 2, 25
    stacked = phen._train(seeds, tasks, steps)
    for arm, regularize in (("baseline", False), ("spectral", True)):
        for run, seed in zip(stacked[arm], seeds, strict=True):
            accuracy, sigma = _alone(phen, regularize, seed, tasks, steps)
            assert all(abs(a - b) <= 1 / 512 for a, b in zip(run["accuracy"], accuracy,
                                                            strict=True))
            assert all(abs(a / b - 1) < 1e-5 for a, b in zip(run["sigma_max"], sigma,
                                                            strict=True))
    assert stacked["spectral"][0]["sigma_max"][-1] != stacked["baseline"][0]["sigma_max"][-1]
