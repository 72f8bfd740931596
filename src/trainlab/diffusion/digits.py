"""scikit-learn's 8x8 handwritten digits (1797 images shipped inside the package; no download),
scaled to [-1, 1], the small image data set of the diffusion experiments, and a classifier
on them used as the reward ("prompt alignment") model of rows 61 and 107.

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


def train_digit_classifier(x: torch.Tensor, y: torch.Tensor, *, shrinkage: float = 0.1
                           ) -> nn.Module:
    r"""Linear discriminant analysis fitted in closed form: class means :math:`\mu_c`, the
    pooled within-class covariance shrunk towards its mean variance,
    :math:`\Sigma = (1-\lambda)\hat\Sigma + \lambda\,\bar v I`, and logits
    :math:`x^T\Sigma^{-1}\mu_c - \tfrac12\mu_c^T\Sigma^{-1}\mu_c + \log\pi_c` (Hastie,
    Tibshirani & Friedman, "The Elements of Statistical Learning", Sec. 4.3). Returned as a
    float64 ``nn.Sequential(Flatten, Linear(64, 10))`` in eval mode with gradients of its
    parameters off (differentiable in its input). Closed form, so it costs milliseconds."""
    flat = x.flatten(1).to(torch.float64)
    classes = int(y.max()) + 1
    means = torch.stack([flat[y == c].mean(0) for c in range(classes)])
    centred = flat - means[y]
    cov = centred.T @ centred / (len(flat) - classes)
    cov = (1 - shrinkage) * cov + shrinkage * cov.diagonal().mean() * torch.eye(
        flat.shape[1], dtype=torch.float64)
    prec_means = torch.linalg.solve(cov, means.T)  # (d, C)
    prior = torch.bincount(y, minlength=classes).to(torch.float64) / len(y)
    lin = nn.Linear(flat.shape[1], classes).to(torch.float64)
    with torch.no_grad():
        lin.weight.copy_(prec_means.T)
        lin.bias.copy_(-0.5 * (means * prec_means.T).sum(1) + prior.log())
    net = nn.Sequential(nn.Flatten(), lin).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


__all__ = ["load_digits_tensor", "train_digit_classifier"]
