"""Attention-logit growth (row 98): the entropy measure, the LR sensitivity and the Bayes loss
against closed forms, the token generator's statistics, the checks on hand-made data, and
the parallel runs against serial ones."""

from __future__ import annotations

import math

import torch

from trainlab.models import build_model
from trainlab.phenomena._base import map_runs
from trainlab.phenomena.wortsman2023_instabilities import (
    AttentionLogitGrowth,
    _attention_entropy,
    best_loss,
    lr_sensitivity,
    noisy_copy_tokens,
    train_run,
    zipf_probs,
)


def test_entropy_of_uniform_causal_attention_is_mean_log_of_prefix_length():
    # zero query/key maps: every logit is 0, so query t attends uniformly to t + 1 keys
    model = build_model("transformer", (8,), 16, d_model=16, heads=2, layers=2).double()
    with torch.no_grad():
        for block in model.blocks:
            block.attn.qkv.weight[:32].zero_()
            block.attn.qkv.bias[:32].zero_()
    tokens = torch.randint(0, 16, (5, 8), generator=torch.Generator().manual_seed(0))
    expected = sum(math.log(t + 1) for t in range(1, 8)) / 7
    assert abs(_attention_entropy(model, tokens) - expected) < 1e-9
    assert not model.blocks[0].attn._forward_pre_hooks  # hooks removed


def test_lr_sensitivity_caps_at_the_initial_loss():
    # E[min(l, l0) - l*]: losses 2, 2.5, 5 (capped to 4), inf (counts as 4); l* = 2
    assert lr_sensitivity([2.0, 2.5, 5.0, math.inf], 4.0) == (0 + 0.5 + 2 + 2) / 4
    assert lr_sensitivity([3.0, 3.0], 4.0) == 0.0


def test_noisy_copy_statistics_and_bayes_loss():
    x = noisy_copy_tokens(20000, 8, 4, 0.75, torch.Generator().manual_seed(0))
    hit = (x[:, 4:] == x[:, :4]).float().mean().item()
    assert abs(hit - (0.75 + 0.25 / 4)) < 0.01
    # Bayes loss: 3 unpredictable first-half targets (log 4) and 4 copy targets
    p = 0.75 + 0.25 / 4
    copy = -(p * math.log(p) + 3 * (0.25 / 4) * math.log(0.25 / 4))
    assert abs(best_loss(8, 4, 0.75) - (3 * math.log(4) + 4 * copy) / 7) < 1e-12
    assert abs(best_loss(8, 4, 0.0) - math.log(4)) < 1e-12  # nothing kept: all uniform


def test_zipf_noisy_copy_frequencies_and_bayes_loss_against_dense_float64():
    # Bayes loss from the definition, H(target | visible source), with the dense float64
    # conditional P(b | a) = keep [a == b] + (1 - keep) p_b
    vocab, keep, length, s = 6, 0.7, 10, 1.3
    p = torch.arange(1, vocab + 1, dtype=torch.float64).pow(-s)
    p /= p.sum()
    torch.testing.assert_close(zipf_probs(vocab, s), p, rtol=0, atol=1e-15)
    cond = keep * torch.eye(vocab, dtype=torch.float64) + (1 - keep) * p[None, :]
    copy = -(p[:, None] * cond * cond.log()).sum().item()
    entropy = -(p * p.log()).sum().item()
    expected = ((length // 2 - 1) * entropy + (length - length // 2) * copy) / (length - 1)
    assert abs(best_loss(length, vocab, keep, s) - expected) < 1e-12
    assert abs(best_loss(length, vocab, keep, 0.0) - best_loss(length, vocab, keep)) == 0.0
    # the generator: first-half token frequencies p, copy hits keep + (1 - keep) sum p^2
    x = noisy_copy_tokens(40000, length, vocab, keep, torch.Generator().manual_seed(0), s)
    freq = torch.bincount(x[:, :5].flatten(), minlength=vocab).double() / x[:, :5].numel()
    assert (freq - p).abs().max().item() < 4 * math.sqrt(0.25 / x[:, :5].numel())
    hit = (x[:, 5:] == x[:, :5]).double().mean().item()
    assert abs(hit - (keep + (1 - keep) * (p * p).sum().item())) < 0.01
    noise = x[:, 5:][x[:, 5:] != x[:, :5]]  # replaced tokens that differ from the source
    assert noise.min().item() >= 0 and noise.max().item() < vocab


def _runs(plain, qk, nowd, nowd_z, *, logit=(1000.0, 10.0)):
    """Hand-made sweeps at lrs 0.01, 0.1, 0.3 for 3 seeds: final losses per arm (initial
    loss 3.5), the largest attention logit of the plain and qk arms."""
    runs = {}
    arms = (("plain", plain, logit[0]), ("qk", qk, logit[1]), ("qk-nowd", nowd, logit[1]),
            ("qk-nowd-z", nowd_z, logit[1]))
    for sd in (0, 1, 2):
        for arm, losses, lmax in arms:
            for lr, loss in zip((0.01, 0.1, 0.3), losses, strict=True):
                runs[f"{arm}@{lr:g}@{sd}"] = {"loss": loss + 0.01 * sd, "initial": 3.5,
                                              "logit_max": lmax, "log_z": 0.0, "log_z0": 3.0}
    return {"lrs": [0.01, 0.1, 0.3], "seeds": [0, 1, 2], "runs": runs}


def test_check_on_hand_made_sweeps():
    phen = AttentionLogitGrowth()
    unstable, flat = [2.0, 3.3, 3.5], [2.0, 2.05, 2.6]
    good = phen.check(_runs(unstable, flat, unstable, flat))
    assert [c.passed for c in good] == [True] * 5
    # seed sd adds 0.01 sd to every loss; the top plain loss is capped at the initial 3.5,
    # so the plain sensitivity is (2.8 - 0.01 sd) / 3 and the flat one 0.65 / 3
    for ratio in (good[0], good[3]):
        assert abs(ratio.measured - 0.65 / 2.79) < 1e-12
    for gap in (good[1], good[4]):
        assert abs(gap.measured - (2.79 - 0.65) / 3) < 1e-12
        assert abs(gap.spread - 0.01 / 3) < 1e-12
    # the z-loss pair alone flat: (a) and (b) still pass, (c) fails
    no_z = phen.check(_runs(unstable, flat, flat, flat))
    assert [c.passed for c in no_z] == [True, True, True, False, False]
    # everything flat, attention logits alike: every check fails
    none = phen.check(_runs(flat, flat, flat, flat, logit=(40.0, 10.0)))
    assert [c.passed for c in none] == [False] * 5


def test_parallel_runs_are_bit_identical_to_serial():
    # each run draws everything from its seed, so 2 worker processes give the same numbers
    jobs = {"a": (0.1, 3, 4, True, False, 0.0, 8), "b": (0.3, 3, 5, False, True, 1e-4, 8)}
    serial = map_runs(train_run, jobs, processes=1)
    assert map_runs(train_run, jobs, processes=2) == serial
    assert serial["a"] != serial["b"]
