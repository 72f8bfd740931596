r"""SmoothGrad sensitivity maps (Smilkov, Thorat, Kim, Viégas, Wattenberg, "SmoothGrad:
removing noise by adding noise", 2017; papers.md row 69).

The sensitivity map of an input is the gradient of a class score with respect to the input;
SmoothGrad averages it over noisy copies,
:math:`\hat M(x) = \frac1n\sum_{k=1}^n \nabla_x S_c(x + \epsilon_k)`,
:math:`\epsilon_k \sim N(0, \sigma^2)`, with :math:`\sigma` a fraction (the paper recommends
10-20 %) of the input's range :math:`x_{max} - x_{min}` and :math:`n = 50`.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import check_range
from trainlab.restore import preserved


def smoothgrad(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor | None = None, *,
               samples: int = 50, noise_level: float = 0.15, magnitude: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """SmoothGrad maps, shape of ``inputs``: the mean gradient of the score of class
    ``target[i]`` (default: the predicted class) at ``samples`` noisy copies of each input.

    ``noise_level`` is :math:`\\sigma / (x_{max} - x_{min})`, the range taken per example;
    ``magnitude=True`` averages squared gradients (the paper's "SmoothGrad with squared
    maps" variant). The model runs in eval mode (restored afterwards); weights, grads and the
    global RNG are untouched.

    Deviations from the paper: the defaults ``samples = 50`` and ``noise_level = 0.15`` are within
    the paper's recommendations stated above; the score is the model's output for the class
    (pre-softmax logits if the model returns logits), and the input range is taken per example.
    """
    check_range("samples", samples, low=1, owner="smoothgrad")
    check_range("noise_level", noise_level, low=0.0, owner="smoothgrad")
    x = inputs.detach()
    flat = x.reshape(x.shape[0], -1)
    sigma = (noise_level * (flat.max(1).values - flat.min(1).values)).reshape(
        -1, *([1] * (x.dim() - 1)))
    total = torch.zeros_like(x)
    with preserved(model):
        model.eval()
        if target is None:
            with torch.no_grad():
                target = model(x).argmax(-1)
        for _ in range(samples):
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            xn = (x + sigma * noise).requires_grad_(True)
            with torch.enable_grad():
                score = model(xn).gather(-1, target.reshape(-1, 1)).sum()
                (g,) = torch.autograd.grad(score, xn)
            total += g * g if magnitude else g
    return total / samples
