r"""Feedback alignment: backpropagation with fixed random feedback matrices.

Backpropagation sends the error of layer :math:`l` down through the transposed forward
weights, :math:`\delta_{l-1} = (W_l^\top \delta_l) \odot f'(a_{l-1})`. Feedback alignment
replaces :math:`W_l^\top` by a fixed random matrix :math:`B_l^\top` (drawn once, never
trained), so no weight transport is needed; the weight updates keep their local form
:math:`\Delta W_l \propto \delta_l x_l^\top`. The forward weights come to align with
:math:`B_l` during training, after which the updates align with the true gradient.

Usage: ``fa = FeedbackAlignment(model, generator=g)``, then inside ``with fa:`` the model's
``nn.Linear`` layers propagate errors through :math:`B_l`; ``loss.backward()`` fills
``p.grad`` with the feedback-alignment updates and any optimizer applies them. Outside the
``with`` block the model is untouched.

References:
    Lillicrap, Cownden, Tweed, Akerman. "Random synaptic feedback weights support error
    backpropagation for deep learning", Nature Communications 2016 (the method), as reviewed
    in García Fernández, Ahmad, van Gerven, "A Unified Perspective on Optimization in Machine
    Learning and Neuroscience: From Gradient Descent to Neural Adaptation", 2025 (papers.md
    row 103). Feedback matrices are drawn like PyTorch's default ``nn.Linear`` weights
    (uniform in :math:`\pm 1/\sqrt{\text{fan\_in}}`) unless ``scale`` is given.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class _FeedbackLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, feedback):
        ctx.save_for_backward(x, feedback)
        ctx.has_bias = bias is not None
        out = x @ weight.T
        return out + bias if bias is not None else out

    @staticmethod
    def backward(ctx, grad_out):
        x, feedback = ctx.saved_tensors
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        grad_w = g2.T @ x.reshape(-1, x.shape[-1])
        grad_b = g2.sum(0) if ctx.has_bias else None
        return grad_out @ feedback, grad_w, grad_b, None


def feedback_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    feedback: torch.Tensor) -> torch.Tensor:
    """``x W^T + b`` whose backward sends errors to ``x`` through ``feedback`` (same shape as
    ``W``) instead of ``W``."""
    return _FeedbackLinear.apply(x, weight, bias, feedback)


class FeedbackAlignment:
    """Fixed random feedback matrices for every ``nn.Linear`` of ``model`` (module docstring).

    Deviations from the paper: row 103 is a review of the method; only ``nn.Linear`` layers get
    feedback matrices (other layers backpropagate as usual), and the feedback scale follows
    PyTorch's default weight draw unless ``scale`` is given (Lillicrap et al.'s own draws were not
    re-read for this paragraph).

    Args:
        model: the network (its ``nn.Linear`` layers get feedback matrices).
        generator: randomness of the feedback matrices.
        scale: feedback entries uniform in ``[-scale, scale]`` (default: ``1/sqrt(fan_in)``).

    Attributes:
        feedback: parameter-name prefix of each layer -> its feedback matrix ``B_l``.
    """

    def __init__(self, model: nn.Module, generator: torch.Generator | None = None,
                 scale: float | None = None):
        self.model = model
        self.layers = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}
        self.feedback: dict[str, torch.Tensor] = {}
        for name, m in self.layers.items():
            bound = scale if scale is not None else m.in_features ** -0.5
            u = torch.rand(m.weight.shape, generator=generator, dtype=m.weight.dtype,
                           device=m.weight.device)
            self.feedback[name] = (2 * u - 1) * bound
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> FeedbackAlignment:
        for name, m in self.layers.items():
            self._saved[name] = m.__dict__.get("forward")
            b = self.feedback[name]
            m.forward = lambda x, m=m, b=b: feedback_linear(x, m.weight, m.bias, b)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, m in self.layers.items():
            saved = self._saved.pop(name, None)
            if saved is None:
                del m.forward
            else:
                m.forward = saved

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.feedback.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.feedback = {k: v.clone() for k, v in state.items()}
