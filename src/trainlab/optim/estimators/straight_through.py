r"""Straight-through and ReinMax gradient estimators for categorical samples.

Both return a one-hot sample :math:`D \sim \mathrm{Cat}(\pi_0)`, :math:`\pi_0 =
\mathrm{softmax}(\theta)`, in the forward pass and a surrogate gradient for the logits
:math:`\theta` in the backward pass (:math:`G = \partial L / \partial D`,
:math:`J(p) = \mathrm{diag}(p) - p p^\top`, the softmax Jacobian at :math:`p`):

* straight-through (first-order, forward Euler): backpropagate as if the output were
  :math:`\mathrm{softmax}(\theta/\tau)`: :math:`\nabla_\theta = \tfrac1\tau J(\pi_\tau) G`;
* ReinMax (second-order, Heun's method): with
  :math:`\pi_1 = \tfrac12(D + \mathrm{softmax}(\theta/\tau))`,
  :math:`\nabla_\theta = 2 J(\pi_1) G - \tfrac12 J(\pi_0) G`, centred over the categories.

References:
    Liu, Chen, Wu, Gao, Han, Wang. "Bridging Discrete and Backpropagation: Straight-Through
    and Beyond", NeurIPS 2023 (papers.md row 97); ReinMax requires tau >= 1 (the paper's
    recommendation), straight-through accepts any tau > 0.
"""

from __future__ import annotations

import torch

from trainlab.errors import check_range


def _sample_one_hot(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    flat = probs.reshape(-1, probs.shape[-1])
    idx = torch.multinomial(flat, 1, replacement=True, generator=generator)
    return torch.zeros_like(flat).scatter_(-1, idx, 1.0).view_as(probs)


def _softmax_jvp(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``J(p)^T g = p * g - p <p, g>`` along the last dimension."""
    return p * g - p * (p * g).sum(-1, keepdim=True)


def straight_through(logits: torch.Tensor, tau: float = 1.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """One-hot sample of ``softmax(logits)`` whose gradient is that of
    ``softmax(logits / tau)`` (straight-through).

    Deviations from the paper: the straight-through baseline as stated above (the backward of
    ``softmax(logits / tau)``, sample drawn from ``softmax(logits)``); the paper's own statement of
    its baseline was not re-read for this paragraph.
    """
    check_range("tau", tau, low=0.0, low_open=True, owner="straight_through")
    with torch.no_grad():
        sample = _sample_one_hot(logits.softmax(-1), generator)
    soft = (logits / tau).softmax(-1)
    return sample + soft - soft.detach()


class _ReinMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, tau: float, generator: torch.Generator | None):
        pi0 = logits.softmax(-1)
        sample = _sample_one_hot(pi0, generator)
        ctx.save_for_backward(sample, logits, pi0)
        ctx.tau = tau
        return sample

    @staticmethod
    def backward(ctx, grad_sample: torch.Tensor):
        sample, logits, pi0 = ctx.saved_tensors
        pi1 = 0.5 * (sample + (logits / ctx.tau).softmax(-1))
        g = 2.0 * _softmax_jvp(pi1, grad_sample) - 0.5 * _softmax_jvp(pi0, grad_sample)
        return g - g.mean(-1, keepdim=True), None, None


def reinmax(logits: torch.Tensor, tau: float = 1.0, generator: torch.Generator | None = None
            ) -> torch.Tensor:
    """One-hot sample of ``softmax(logits)`` with ReinMax's second-order gradient.

    Deviations from the paper: none known in the backward pass: checked against
    ``ReinMax_Auto`` of the authors' ``reinmax`` package (read in a third-party copy that adds a
    weight ``alpha``; at ``alpha = 1`` its backward is the one above, centred over the
    categories). That function also returns ``softmax(logits)`` with its own gradient; here
    only the sample is returned (take the softmax separately). The paper's text was not
    re-read for this paragraph.
    """
    check_range("tau", tau, low=1.0, owner="reinmax")
    return _ReinMax.apply(logits, tau, generator)
