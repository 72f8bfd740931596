"""Gradual rank increase (row 71): the rank count and plateau finder against plain
references, and the diagonal attention head against an explicit per-sequence computation."""

from __future__ import annotations

import numpy as np
import torch

from trainlab.phenomena.boixadsera2023_rank_increase import (
    _DiagonalQKAttention,
    count_above,
    plateaus,
)


def test_count_above_matches_numpy_svd():
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    m = u[:, :3] @ torch.diag(torch.tensor([5.0, 1.0, 0.4], dtype=torch.float64)) @ u[:, 3:].T
    s = np.linalg.svd(m.numpy(), compute_uv=False)
    assert count_above(m) == int((s > 0.1 * s[0]).sum()) == 2
    assert count_above(m, 0.05) == 3
    assert count_above(torch.zeros(4, 4)) == 0


def test_plateaus():
    assert plateaus([0, 1, 1, 1, 2, 2, 3, 3, 3, 3], 3) == [1, 3]
    assert plateaus([0, 0, 1, 1, 0, 0], 2) == [0, 1, 0]
    assert plateaus([], 1) == []


def test_attention_head_matches_explicit_softmax():
    g = torch.Generator().manual_seed(1)
    head = _DiagonalQKAttention(4, 0.5, g)
    x = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    m = (torch.diag(head.q) @ torch.diag(head.k).T).detach()  # W_Q W_K^T, diagonal
    assert torch.equal(head.product().detach(), m)
    for n in range(3):
        logits = np.array([[x[n, i] @ m @ x[n, j] / 4 for j in range(5)] for i in range(5)])
        att = np.exp(logits - logits.max(1, keepdims=True))
        att /= att.sum(1, keepdims=True)
        np.testing.assert_allclose(head(x)[n].detach().numpy(), att @ x[n].numpy(), atol=1e-12)


def _run(counts, losses):
    return {"count": np.array(counts), "loss": np.array(losses, dtype=float)}


def test_counts_are_read_once_the_loss_moves():
    from trainlab.phenomena.boixadsera2023_rank_increase import GradualRankIncrease

    run = _run([5, 3, 1, 1, 2, 2], [1.0, 1.0, 0.995, 0.98, 0.5, 0.1])
    assert GradualRankIncrease.learning_counts(run) == [1, 2, 2]
    assert GradualRankIncrease.learning_counts(_run([3, 2], [1.0, 1.0])) == []


def test_held_runs_and_stage_violations():
    from trainlab.phenomena.boixadsera2023_rank_increase import held_runs, stage_violations

    assert held_runs([0, 1, 1, 1, 2, 2], 2) == [(1, 1, 4), (2, 4, 6)]
    loss = [1.0, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.2, 0.2, 0.2]
    assert stage_violations([5, 1, 1, 1, 2, 2, 2, 3, 3, 3], loss, 3) == 0
    assert stage_violations([5, 2, 2, 2, 2, 2, 2, 3, 3, 3], loss, 3) == 1  # 0 -> 2
    assert stage_violations([5, 1, 1, 1, 2, 2, 2, 1, 1, 1], loss, 3) == 1  # 2 -> 1
    assert stage_violations([5, 1, 1, 1, 2, 2, 2, 3, 3, 3], loss[::-1], 3) == 2  # loss rises
    # a short dip between plateaus is a transition, which the theorem does not describe
    assert stage_violations([1, 1, 1, 0, 1, 1, 1, 2, 2, 2], loss, 3) == 0


def _stairs(values, lengths, losses):
    counts = [v for v, n in zip(values, lengths, strict=True) for _ in range(n)]
    loss = [x for x, n in zip(losses, lengths, strict=True) for _ in range(n)]
    return _run(counts, loss)


def test_check_on_hand_made_staircases():
    from trainlab.phenomena.boixadsera2023_rank_increase import GradualRankIncrease

    lengths, losses = [40, 5, 40, 40, 40, 40], [1.0, 1.0, 0.9, 0.4, 0.2, 0.0]
    small = _stairs([5, 3, 1, 2, 3, 4], lengths, losses)  # 5, 3 are before learning
    large = _stairs([9] * 6, lengths, losses)
    data = {"teacher_rank": 4, "runs": [{"small": small, "large": large}] * 3}
    checks = GradualRankIncrease().check(data)
    assert [c.passed for c in checks] == [True] * 5
    jump = _stairs([5, 3, 1, 3, 3, 4], lengths, losses)  # 1 -> 3 skips a stage
    data["runs"] = [{"small": small, "large": large}] * 2 + [{"small": jump, "large": large}]
    assert not GradualRankIncrease().check(data)[1].passed
