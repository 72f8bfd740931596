"""gradient-starvation (row 74): the moons' layout, the closed-form tangent kernel against
``empirical_ntk``, the batched training against separate modules with torch.optim.SGD, the
features, and the check on hand-made runs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainlab.analyses.ntk import empirical_ntk
from trainlab.models import build_model
from trainlab.phenomena.pezeshki2021_gradient_starvation import (
    GradientStarvation,
    batched_two_layer_relu,
    ntk_features,
    shifted_moons,
    two_layer_relu_ntk,
)


def test_moons_margin():
    x, s = shifted_moons(300, 0.1, 0)
    assert x.shape == (300, 2) and set(s.tolist()) == {-1.0, 1.0}
    assert float((s * x[:, 0]).max()) <= -0.1 + 1e-6  # a gap of 0.2 along the first axis
    x, s = shifted_moons(300, -0.1, 0)
    assert float((s * x[:, 0]).max()) > 0  # overlap: not separable along it


def test_closed_form_kernel_matches_empirical_ntk():
    torch.manual_seed(0)
    net = build_model("mlp", (2,), 1, depth=1, width=20).double()
    x = torch.randn(15, 2, dtype=torch.float64)
    k = two_layer_relu_ntk(net[1].weight.detach(), net[1].bias.detach(),
                           net[3].weight.detach()[0], x)
    assert torch.allclose(k, empirical_ntk(net, x), atol=1e-12)


def test_batched_training_matches_separate_runs():
    torch.manual_seed(1)
    nets = [build_model("mlp", (2,), 1, depth=1, width=8).double() for _ in range(2)]
    xs = [torch.randn(10, 2, dtype=torch.float64) for _ in range(2)]
    ss = [torch.sign(x[:, 0]) for x in xs]
    coefs = [0.0, 0.003]
    params = [torch.stack([n[1].weight for n in nets]).detach().clone().requires_grad_(True),
              torch.stack([n[1].bias for n in nets]).detach().clone().requires_grad_(True),
              torch.stack([n[3].weight[0] for n in nets]).detach().clone().requires_grad_(True),
              torch.stack([n[3].bias[0] for n in nets]).detach().clone().requires_grad_(True)]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=2e-4)
    x, s, c = torch.stack(xs), torch.stack(ss), torch.tensor(coefs, dtype=torch.float64)
    for _ in range(5):
        f = batched_two_layer_relu(params, x)
        opt.zero_grad()
        (F.softplus(-s * f).mean(1) + c * f.pow(2).mean(1)).sum().backward()
        opt.step()
    for r, net in enumerate(nets):
        o = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
        for _ in range(5):
            f = net(xs[r])[:, 0]
            o.zero_grad()
            (F.softplus(-ss[r] * f).mean() + coefs[r] * f.pow(2).mean()).backward()
            o.step()
        assert torch.allclose(net[1].weight, params[0][r], atol=1e-12)
        assert torch.allclose(net[3].weight[0], params[2][r], atol=1e-12)


def test_features_are_projections_on_decreasing_eigenvectors():
    k = torch.diag(torch.tensor([1.0, 5.0, 3.0]))
    z = ntk_features(k, torch.tensor([-2.0, 7.0, 4.0]))
    assert torch.allclose(z, torch.tensor([7.0, 4.0, 2.0], dtype=torch.float64))


def _data(z1, z2):
    seeds = [0, 1, 2]
    runs = {}
    for i, sd in enumerate(seeds):
        w = 1 + 0.05 * i
        for arm in ("ce_overlap", "ce_separable", "sd_separable"):
            runs[f"{arm}@{sd}"] = {"z": [z1[arm] * w, z2[arm] / w], "train_acc": 1.0}
    return {"seeds": seeds, "runs": runs}


def test_check_on_hand_made_runs():
    starved = _data({"ce_overlap": 130, "ce_separable": 200, "sd_separable": 60},
                    {"ce_overlap": 10, "ce_separable": 1.5, "sd_separable": 10})
    assert all(c.passed for c in GradientStarvation().check(starved))
    none = _data({"ce_overlap": 130, "ce_separable": 130, "sd_separable": 130},
                 {"ce_overlap": 10, "ce_separable": 10, "sd_separable": 10})
    assert not any(c.passed for c in GradientStarvation().check(none)[:4])
