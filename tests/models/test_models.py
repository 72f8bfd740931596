import pytest
import torch

from trainlab.errors import ConfigError, UnknownNameError
from trainlab.models import build_model


@pytest.mark.parametrize("name,params", [("mlp", {"depth": 3, "width": 8}),
                                         ("deep-linear", {"depth": 2, "width": 5}),
                                         ("cnn1d", {"channels": 4, "layers": 2})])
def test_models_map_inputs_to_outputs(name, params):
    model = build_model(name, (40,), 10, **params)
    assert model(torch.randn(3, 40)).shape == (3, 10)


def test_deep_linear_is_linear():
    model = build_model("deep-linear", (6,), 3, depth=3, width=4)
    x, y = torch.randn(2, 6), torch.randn(2, 6)
    assert torch.allclose(model(x + 2 * y), model(x) + 2 * model(y), atol=1e-5)
    assert all(p.dim() == 2 for p in model.parameters())


def test_bad_model_arguments():
    with pytest.raises(UnknownNameError, match="relu"):
        build_model("mlp", (4,), 2, activation="rellu")
    with pytest.raises(ConfigError, match="depth"):
        build_model("mlp", (4,), 2, depth=-1)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        build_model("mlp", (4,), 2, widht=3)
