"""LSUV (Mishkin & Matas 2016, papers.md row 42)."""

import torch

import trainlab.init as tinit
from trainlab.models import build_model


def test_each_layer_output_variance_within_tolerance_on_init_batch():
    model = build_model("mlp", (40,), 10, depth=8, width=64, activation="tanh").double()
    x = 3.0 * torch.randn(256, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    report = tinit.apply(model, "lsuv", batch=x, generator=torch.Generator().manual_seed(1))
    assert report.converged
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outputs.append(o))
             for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    assert len(outputs) == 9
    for out in outputs:
        assert abs(out.var().item() - 1.0) < 0.1
    for m in model:
        if isinstance(m, torch.nn.Linear) and m.out_features <= m.in_features:
            gram = m.weight @ m.weight.T  # orthonormal rows times one scale
            scale = gram.diagonal().mean()
            torch.testing.assert_close(gram, scale * torch.eye(m.out_features,
                                                               dtype=torch.float64))
