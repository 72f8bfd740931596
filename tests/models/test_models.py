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


def _weights(model, kind):
    return [m for m in model.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("parametrization", ["standard", "ntk"])
def test_mlp_equals_its_written_out_forward(parametrization):
    """relu(W1 x + b1) ... then W_out h + b_out, from the model's own parameters (NTK: each
    weight divided by sqrt(fan_in) in the forward pass), in float64."""
    torch.manual_seed(0)
    model = build_model("mlp", (2, 5), 3, depth=2, width=6,
                        parametrization=parametrization).double()
    x = torch.randn(4, 2, 5, dtype=torch.float64)
    h = x.reshape(4, 10)
    layers = _weights(model, torch.nn.Linear)
    assert [tuple(m.weight.shape) for m in layers] == [(6, 10), (6, 6), (3, 6)]
    for i, m in enumerate(layers):
        scale = m.in_features ** -0.5 if parametrization == "ntk" else 1.0
        h = h @ (scale * m.weight).T + m.bias
        if i < len(layers) - 1:
            h = torch.relu(h)
    torch.testing.assert_close(model(x), h, rtol=1e-12, atol=1e-12)


def test_cnn1d_equals_its_written_out_forward():
    """conv (kernel 5, padding 2; stride 1 then 2) + relu, mean over positions, readout."""
    torch.manual_seed(0)
    model = build_model("cnn1d", (40,), 10, channels=3, layers=2).double()
    x = torch.randn(2, 40, dtype=torch.float64)
    h = x[:, None, :]
    for i, conv in enumerate(_weights(model, torch.nn.Conv1d)):
        padded = torch.nn.functional.pad(h, (2, 2))
        stride = 1 if i == 0 else 2
        cols = padded.unfold(-1, 5, stride)  # (N, C_in, L_out, 5)
        h = torch.relu(torch.einsum("nclk,ock->nol", cols, conv.weight) + conv.bias[:, None])
    assert h.shape == (2, 3, 20)
    readout = _weights(model, torch.nn.Linear)[0]
    torch.testing.assert_close(model(x), h.mean(-1) @ readout.weight.T + readout.bias,
                               rtol=1e-12, atol=1e-12)


def test_cnn1d_layernorm_normalizes_each_example_over_channels_and_positions():
    """norm="layernorm": conv, then (h - mean) / sqrt(var + 1e-5) over (channels, positions)
    of each example, times a per-channel gain plus a per-channel bias, then relu."""
    torch.manual_seed(0)
    model = build_model("cnn1d", (40,), 10, channels=3, layers=2, norm="layernorm").double()
    norms = _weights(model, torch.nn.GroupNorm)
    assert len(norms) == 2
    with torch.no_grad():
        for m in norms:
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 40, dtype=torch.float64)
    h = x[:, None, :]
    for i, (conv, m) in enumerate(zip(_weights(model, torch.nn.Conv1d), norms, strict=True)):
        h = torch.nn.functional.conv1d(h, conv.weight, conv.bias, stride=1 if i == 0 else 2,
                                       padding=2)
        mean = h.mean((1, 2), keepdim=True)
        var = h.var((1, 2), unbiased=False, keepdim=True)
        h = torch.relu((h - mean) / torch.sqrt(var + 1e-5) * m.weight[:, None]
                       + m.bias[:, None])
    readout = _weights(model, torch.nn.Linear)[0]
    torch.testing.assert_close(model(x), h.mean(-1) @ readout.weight.T + readout.bias,
                               rtol=1e-10, atol=1e-10)
    with pytest.raises(ConfigError, match="norm"):
        build_model("cnn1d", (40,), 10, norm="batchnorm")



def _layernorm(h, m):
    mean = h.mean((1, 2), keepdim=True)
    var = h.var((1, 2), unbiased=False, keepdim=True)
    return (h - mean) / torch.sqrt(var + 1e-5) * m.weight[:, None] + m.bias[:, None]


def test_cnn1d_residual_equals_its_written_out_forward():
    """residual=True: stem relu(LN(conv(x))), then for each later layer
    relu(LN(conv2(relu(LN(conv1_stride2(h))))) + LN(conv1x1_stride2(h))), convolutions without
    bias after a norm; a shape-keeping block has the identity shortcut."""
    torch.manual_seed(0)
    model = build_model("cnn1d", (40,), 10, channels=3, layers=3, norm="layernorm",
                        residual=True).double()
    convs, norms = _weights(model, torch.nn.Conv1d), _weights(model, torch.nn.GroupNorm)
    assert len(convs) == 1 + 2 * 3 and len(norms) == 1 + 2 * 3
    assert convs[0].bias is not None and all(c.bias is None for c in convs[1:])
    with torch.no_grad():
        for m in norms:
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
    conv1d, relu = torch.nn.functional.conv1d, torch.relu
    x = torch.randn(2, 40, dtype=torch.float64)
    h = relu(_layernorm(conv1d(x[:, None, :], convs[0].weight, convs[0].bias, padding=2),
                        norms[0]))
    for b in range(2):  # modules in order: conv1, norm1, conv2, norm2, shortcut conv, norm
        c1, c2, cs = convs[1 + 3 * b: 4 + 3 * b]
        n1, n2, ns = norms[1 + 3 * b: 4 + 3 * b]
        inner = relu(_layernorm(conv1d(h, c1.weight, stride=2, padding=2), n1))
        inner = _layernorm(conv1d(inner, c2.weight, padding=2), n2)
        h = relu(inner + _layernorm(conv1d(h, cs.weight, stride=2), ns))
    assert h.shape == (2, 3, 10)
    readout = _weights(model, torch.nn.Linear)[0]
    torch.testing.assert_close(model(x), h.mean(-1) @ readout.weight.T + readout.bias,
                               rtol=1e-10, atol=1e-10)
    # a block that keeps the shape has the identity shortcut; no norm -> biased convolutions
    plain = build_model("cnn1d", (3, 40), 10, channels=3, layers=2, residual=True).double()
    block = plain.features[2]
    assert isinstance(block.shortcut, torch.nn.Sequential)
    from trainlab.models.cnn1d import _BasicBlock
    same = _BasicBlock(3, 3, 1, "none", "relu").double()
    z = torch.randn(2, 3, 8, dtype=torch.float64)
    inner = conv1d(relu(conv1d(z, same.conv1.weight, same.conv1.bias, padding=2)),
                   same.conv2.weight, same.conv2.bias, padding=2)
    torch.testing.assert_close(same(z), relu(inner + z), rtol=1e-12, atol=1e-12)
    with pytest.raises(ConfigError, match="residual"):
        build_model("cnn1d", (40,), 10, residual="yes")

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
