"""The Elman RNN against the recurrence written out step by step (float64), the "all"
readout, an explicit initial state, the vanishing-gradient bound, and argument errors."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.models import MODELS, build_model
from trainlab.models.rnn import ElmanRNN


def _reference(model: ElmanRNN, x: torch.Tensor, h0: torch.Tensor, act) -> torch.Tensor:
    r = model.rnn
    h, outs = h0, []
    for t in range(x.shape[1]):  # h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
        h = act(x[:, t] @ r.weight_ih_l0.T + r.bias_ih_l0 + h @ r.weight_hh_l0.T + r.bias_hh_l0)
        outs.append(h @ model.out.weight.T + model.out.bias)
    return torch.stack(outs, dim=1)


@pytest.mark.parametrize("nonlinearity,act", [("tanh", torch.tanh), ("relu", torch.relu)])
def test_matches_the_recurrence(nonlinearity, act):
    g = torch.Generator().manual_seed(0)
    last = build_model("rnn", (7, 3), 2, hidden=5, nonlinearity=nonlinearity).double()
    every = build_model("rnn", (7, 3), 2, hidden=5, nonlinearity=nonlinearity,
                        readout="all").double()
    every.load_state_dict(last.state_dict())
    x = torch.randn(4, 7, 3, generator=g, dtype=torch.float64)
    ref = _reference(last, x, torch.zeros(4, 5, dtype=torch.float64), act)
    torch.testing.assert_close(last(x), ref[:, -1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(every(x), ref, rtol=1e-12, atol=1e-12)
    h0 = torch.randn(1, 4, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(last(x, h0), _reference(last, x, h0[0], act)[:, -1])
    x_long = torch.randn(2, 12, 3, generator=g, dtype=torch.float64)  # other lengths work
    assert last(x_long).shape == (2, 2)


def test_weight_views_and_vanishing_bound():
    model = build_model("rnn", (30, 2), 1, hidden=8).double()
    assert model.recurrent_weight is model.rnn.weight_hh_l0
    assert model.input_weight.shape == (8, 2)
    with torch.no_grad():  # sigma_max(W_hh) = 0.5 and tanh' <= 1: ||dh_T/dh_0|| <= 0.5^T
        q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0),
                                           dtype=torch.float64))
        model.recurrent_weight.copy_(0.5 * q)
    x = torch.randn(1, 30, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h0 = torch.zeros(1, 1, 8, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda h: model.rnn(x, h)[1][0, 0], h0)
    assert torch.linalg.matrix_norm(jac.reshape(8, 8), ord=2) <= 0.5**30


def test_registered_and_errors():
    assert MODELS.entry("rnn").papers == (31,)
    with pytest.raises(ConfigError, match=r"\(T, d\)"):
        build_model("rnn", (10,), 1)
    with pytest.raises(ConfigError, match="nonlinearity"):
        build_model("rnn", (10, 2), 1, nonlinearity="sigmoid")
    with pytest.raises(ConfigError, match="readout"):
        build_model("rnn", (10, 2), 1, readout="mean")
    with pytest.raises(ConfigError, match="inputs must be"):
        build_model("rnn", (10, 2), 1)(torch.randn(3, 2))
