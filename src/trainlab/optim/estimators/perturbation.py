r"""Perturbation learning: gradient estimates from loss differences under random noise, the
biologically plausible alternatives to backpropagation.

* **weight perturbation** perturbs all parameters, :math:`\xi \sim \mathcal N(0, I)`:
  :math:`\hat g = \frac{L(w + \sigma\xi) - L(w - \sigma\xi)}{2\sigma}\, \xi`;
* **node perturbation** perturbs the pre-activations :math:`a_l = W_l x_l + b_l` of every
  ``nn.Linear`` layer, :math:`\xi_l \sim \mathcal N(0, I)`, estimates
  :math:`\hat\delta_l = \frac{L(a + \sigma\xi) - L(a - \sigma\xi)}{2\sigma}\,\xi_l` for
  :math:`\partial L / \partial a_l` and forms the weight updates locally,
  :math:`\hat g_{W_l} = \hat\delta_l^\top x_l`, :math:`\hat g_{b_l} = \sum_n \hat\delta_{l,n}`.

Both are unbiased up to :math:`O(\sigma^2)` (exactly unbiased for a quadratic loss), since
:math:`\mathbb E[\xi\xi^\top] = I`; node perturbation has lower variance because the
perturbed space (units) is smaller than the parameter space. ``num_samples`` averages
independent draws.

References:
    García Fernández, Ahmad, van Gerven. "A Unified Perspective on Optimization in Machine
    Learning and Neuroscience: From Gradient Descent to Neural Adaptation", 2025 (arXiv
    2510.18812; papers.md row 103), which reviews perturbation (zeroth-order) learning and
    feedback alignment beside backpropagation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trainlab.errors import check_range

Params = dict[str, torch.Tensor]


def weight_perturbation(f: Callable[[Params], torch.Tensor], params: Params, *,
                        sigma: float = 1e-3, num_samples: int = 1,
                        generator: torch.Generator | None = None) -> Params:
    """Antithetic weight-perturbation estimate of ``grad f(params)`` (parameters untouched).

    Deviations from the paper: row 103 is a review that states the method generically; the
    antithetic (two-sided) difference, ``sigma = 1e-3`` and ``num_samples = 1`` are this
    implementation's choices.
    """
    check_range("sigma", sigma, low=0.0, low_open=True, owner="weight_perturbation")
    check_range("num_samples", num_samples, low=1, owner="weight_perturbation")
    est = {n: torch.zeros_like(p) for n, p in params.items()}
    with torch.no_grad():
        for _ in range(num_samples):
            xi = {n: torch.randn(p.shape, dtype=p.dtype, device=p.device, generator=generator)
                  for n, p in params.items()}
            up = f({n: p + sigma * xi[n] for n, p in params.items()})
            down = f({n: p - sigma * xi[n] for n, p in params.items()})
            scale = (up - down) / (2 * sigma * num_samples)
            for n in est:
                est[n] += scale * xi[n]
    return est


def node_perturbation(model: nn.Module, loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
                      inputs: torch.Tensor, targets: Any, *, sigma: float = 1e-3,
                      num_samples: int = 1, generator: torch.Generator | None = None
                      ) -> dict[str, torch.Tensor]:
    """Node-perturbation estimate of the gradient of every ``nn.Linear`` weight and bias of
    ``model`` (by parameter name); the model, its gradients and its mode are left as they
    are.

    Deviations from the paper: row 103 is a review that states the method generically; the
    antithetic (two-sided) difference, ``sigma = 1e-3`` and ``num_samples = 1`` are this
    implementation's choices, and only ``nn.Linear`` layers are perturbed.
    """
    check_range("sigma", sigma, low=0.0, low_open=True, owner="node_perturbation")
    check_range("num_samples", num_samples, low=1, owner="node_perturbation")
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    clean_inputs: dict[str, torch.Tensor] = {}
    noise: dict[str, torch.Tensor] = {}
    sign = [0.0]

    def hook(name):
        def fn(module, args, output):
            if sign[0] == 0.0:
                clean_inputs[name] = args[0].detach()
                return None
            return output + sign[0] * sigma * noise[name]
        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in layers]
    est: dict[str, torch.Tensor] = {}
    try:
        with torch.no_grad():
            model(inputs)  # records the clean layer inputs
            for _ in range(num_samples):
                for name, m in layers:
                    shape = clean_inputs[name].shape[:-1] + (m.out_features,)
                    noise[name] = torch.randn(shape, dtype=clean_inputs[name].dtype,
                                              device=clean_inputs[name].device,
                                              generator=generator)
                sign[0] = 1.0
                up = loss_fn(model(inputs), targets)
                sign[0] = -1.0
                down = loss_fn(model(inputs), targets)
                sign[0] = 0.0
                scale = (up - down) / (2 * sigma * num_samples)
                for name, m in layers:
                    delta = (scale * noise[name]).reshape(-1, m.out_features)
                    x = clean_inputs[name].reshape(-1, m.in_features)
                    prefix = f"{name}." if name else ""
                    est[prefix + "weight"] = est.get(prefix + "weight", 0) + delta.T @ x
                    if m.bias is not None:
                        est[prefix + "bias"] = est.get(prefix + "bias", 0) + delta.sum(0)
    finally:
        sign[0] = 0.0
        for h in handles:
            h.remove()
    return est
