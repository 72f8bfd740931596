"""Contract battery over the init registry: papers rows, determinism, generator-driven
variance within a CLT bound, global RNG untouched."""

import math

import pytest
import torch

import trainlab.init as tinit
from trainlab.init import INITS

PAPER_ROWS = {"orthogonal": 1, "decoupled": 1, "kumar": 3, "lsuv": 42, "idinit": 19,
              "conv-aware": 24, "maxout": 17, "virgo": 77, "siren": 58, "vi3nr": 58,
              "lora-a": 32, "lora-b": 32, "edge-of-chaos": 111, "small": 20}


@pytest.mark.parametrize(("name", "row"), sorted(PAPER_ROWS.items()))
def test_entries_carry_their_paper_rows(name, row):
    assert row in INITS.entry(name).papers


RANDOM_DATA_FREE = ["orthogonal", "kumar", "conv-aware", "maxout", "siren", "vi3nr",
                    "edge-of-chaos", "small", "kaiming-normal"]


def _model():
    return torch.nn.Sequential(torch.nn.Conv1d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 6, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 4))


@pytest.mark.parametrize("name", RANDOM_DATA_FREE)
def test_same_generator_same_weights_and_global_rng_untouched(name):
    a, b = _model(), _model()
    state = torch.get_rng_state()
    tinit.apply(a, name, generator=torch.Generator().manual_seed(11))
    tinit.apply(b, name, generator=torch.Generator().manual_seed(11))
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(("fill", "variance"), [
    (lambda w, g: tinit.kumar_normal_(w, "tanh", generator=g), lambda n: 1 / n),
    (lambda w, g: tinit.maxout_normal_(w, 4, generator=g), lambda n: 1 / 1.55133 / n),
    (lambda w, g: tinit.pseudo_iid_(w, 2.0, "sparse", generator=g), lambda n: 2 / n),
    (lambda w, g: tinit.vi3nr_(w, "relu", generator=g), lambda n: 2 / n),
])
def test_generator_driven_variance_within_clt_bound(fill, variance):
    n_out, n_in = 300, 200
    w = fill(torch.empty(n_out, n_in, dtype=torch.float64), torch.Generator().manual_seed(0))
    m2 = w.pow(2).mean().item()
    kurt = (w.pow(4).mean().item() / m2 ** 2)  # E w^4 / (E w^2)^2
    sd = math.sqrt((kurt - 1) / w.numel())
    assert abs(m2 / variance(n_in) - 1) < 4 * sd + 1e-4
