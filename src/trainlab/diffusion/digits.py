"""scikit-learn's 8x8 handwritten digits (1797 images shipped inside the package; no download),
scaled to [-1, 1], the small image data set of the diffusion experiments, and a small
classifier on them used as the reward ("prompt alignment") model of rows 61 and 107.

Reference: Alpaydin & Kaynak, "Optical Recognition of Handwritten Digits", UCI, 1998 (the
data of ``sklearn.datasets.load_digits``).
"""

from __future__ import annotations

import torch
from torch import nn


def load_digits_tensor() -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (1797, 1, 8, 8) float64 in [-1, 1], labels (1797,) int64)``; pixel values
    0..16 are mapped by ``v / 8 - 1``. Needs scikit-learn (the ``diffusion`` extra)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.images, dtype=torch.float64) / 8 - 1
    return x[:, None], torch.as_tensor(d.target, dtype=torch.long)


def train_digit_classifier(x: torch.Tensor, y: torch.Tensor, *, hidden: int = 64,
                           steps: int = 300, lr: float = 1e-2,
                           generator: torch.Generator | None = None) -> nn.Module:
    """A one-hidden-layer tanh MLP on the flattened images, trained by full-batch Adam on the
    cross-entropy (float64); returned in eval mode with gradients of its parameters off."""
    g = generator
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.Tanh(), nn.Linear(hidden, 10))
    net = net.to(torch.float64)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64)
                    / (p.shape[-1] ** 0.5 if p.ndim > 1 else 10.0))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


__all__ = ["load_digits_tensor", "train_digit_classifier"]
