"""LoRA Init[A] / Init[B] (Hayou et al. 2024, papers.md row 32)."""

import pytest
import torch

import trainlab.init as tinit
from trainlab.models.lora import LoRALinear, add_lora


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


@pytest.mark.parametrize("scheme", ["lora-a", "lora-b"])
def test_product_is_zero_and_output_unchanged(scheme):
    model = _model()
    x = torch.randn(4, 8)
    before = model(x).detach()
    base_w = model[0].weight.detach().clone()
    assert add_lora(model, rank=4) == ["0", "2"]
    tinit.apply(model, scheme, generator=torch.Generator().manual_seed(1))
    for m in (model[0], model[2]):
        assert isinstance(m, LoRALinear)
        assert torch.equal(m.delta(), torch.zeros_like(m.delta()))
    torch.testing.assert_close(model(x), before, atol=0, rtol=0)
    assert torch.equal(model[0].base.weight, base_w)
    loss = model(x).pow(2).sum()
    loss.backward()
    a, b = model[0].lora_a, model[0].lora_b
    if scheme == "lora-a":
        assert a.abs().sum() > 0 and b.abs().sum() == 0
        assert a.grad.abs().sum() == 0 and b.grad.abs().sum() > 0
    else:
        assert a.abs().sum() == 0 and b.abs().sum() > 0
        assert a.grad.abs().sum() > 0 and b.grad.abs().sum() == 0
    assert model[0].base.weight.grad is None


def test_no_adapters_is_an_error():
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match="LoRALinear"):
        tinit.apply(_model(), "lora-a")
