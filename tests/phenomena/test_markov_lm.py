"""The synthetic Markov language of the LM phenomena: its entropy rate and Bayes loss against
hand computations, its samples against its table, and determinism under a generator."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.phenomena._markov_lm import MarkovSource, _stationary, markov_source


def _h(p):
    return -sum(q * math.log(q) for q in p if q > 0)


def test_two_state_chain_entropy_rate_is_the_closed_form():
    a, b = 0.3, 0.8  # P(0 -> 1), P(1 -> 0)
    table = torch.tensor([[1 - a, a], [b, 1 - b]], dtype=torch.float64)
    pi = _stationary(table, 2, 1)
    assert pi.tolist() == pytest.approx([b / (a + b), a / (a + b)], abs=1e-10)
    src = MarkovSource(2, 1, table.float(), pi.float())
    expected = b / (a + b) * _h([a, 1 - a]) + a / (a + b) * _h([b, 1 - b])
    assert src.entropy_rate() == pytest.approx(expected, rel=1e-6)
    assert src.bayes_loss(9) == pytest.approx(expected, rel=1e-6)  # order 1: no early target


def test_order_two_bayes_loss_against_brute_force_enumeration():
    src = markov_source(3, 2, 2, torch.Generator().manual_seed(4))
    table, pi = src.table.double(), src.stationary.double()
    # stationarity: the pair distribution is carried to itself by one step
    moved = torch.zeros(9, dtype=torch.float64)
    for c, tok in itertools.product(range(9), range(3)):
        moved[(c % 3) * 3 + tok] += pi[c] * table[c, tok]
    assert torch.allclose(moved, pi, atol=1e-10)
    # brute force over all length-3 sequences: H(X1 | X0) and H(X2 | X0, X1)
    p3 = {s: float(pi[s[0] * 3 + s[1]] * table[s[0] * 3 + s[1], s[2]])
          for s in itertools.product(range(3), repeat=3)}

    def marg(k):
        out: dict = {}
        for s, p in p3.items():
            out[s[:k]] = out.get(s[:k], 0.0) + p
        return out

    h1, h2, h3 = (_h(marg(k).values()) for k in (1, 2, 3))
    rate = h3 - h2
    assert src.entropy_rate() == pytest.approx(rate, rel=1e-5)
    assert src.bayes_loss(3) == pytest.approx(((h2 - h1) + rate) / 2, rel=1e-5)
    assert src.bayes_loss(6) == pytest.approx(((h2 - h1) + 4 * rate) / 5, rel=1e-5)


def test_table_is_sparse_and_samples_follow_it():
    src = markov_source(4, 2, 2, torch.Generator().manual_seed(0))
    assert src.table.shape == (16, 4)
    assert ((src.table > 0).sum(1) == 2).all()
    assert torch.allclose(src.table.sum(1), torch.ones(16))
    x = src.sample(20000, 6, torch.Generator().manual_seed(1))
    assert x.shape == (20000, 6) and x.dtype == torch.long
    ctx = x[:, 3] * 4 + x[:, 4]  # context of the last token
    for c in range(16):
        sel = x[ctx == c, 5]
        if len(sel) < 500:
            continue
        freq = torch.bincount(sel, minlength=4).double() / len(sel)
        assert torch.allclose(freq, src.table[c].double(), atol=0.06)
    start = torch.bincount(x[:, 0] * 4 + x[:, 1], minlength=16).double() / len(x)
    assert torch.allclose(start, src.stationary.double(), atol=0.02)


def test_same_generator_same_language_and_samples():
    a = markov_source(5, 2, 3, torch.Generator().manual_seed(7))
    b = markov_source(5, 2, 3, torch.Generator().manual_seed(7))
    assert torch.equal(a.table, b.table)
    xa = a.sample(8, 10, torch.Generator().manual_seed(3))
    xb = b.sample(8, 10, torch.Generator().manual_seed(3))
    assert torch.equal(xa, xb)
    assert not torch.equal(xa, a.sample(8, 10, torch.Generator().manual_seed(4)))


def test_bad_arguments_are_rejected():
    with pytest.raises(ConfigError, match="branching"):
        markov_source(4, 1, 5, torch.Generator())
    with pytest.raises(ConfigError, match="length"):
        markov_source(4, 2, 2, torch.Generator().manual_seed(0)).sample(3, 1, torch.Generator())
