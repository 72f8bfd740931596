r"""A class-conditional "digits diffusion model" with an exact score, and the reward model.

The exact denoiser of a class-conditional Gaussian fit to scikit-learn's 8x8 digits (one
Gaussian per digit: the class mean and the class covariance plus ``ridge`` I): no network is
trained and sampling is exact up to the sampler's discretisation, the perfectly trained limit
of the small trained model of :mod:`trainlab.diffusion.digits_denoiser` (which the
initial-noise phenomena of rows 61 and 107 use as their frozen model). Conditioning on a digit
c ("the prompt") uses classifier-free guidance (Ho & Salimans, "Classifier-Free Diffusion
Guidance", 2022, eq. 6) at weight w:

.. math:: \varepsilon_w(x, t) = \varepsilon_{uncond}(x, t) + w\,(\varepsilon_c(x, t)
          - \varepsilon_{uncond}(x, t)),

with w < 1 a weak guidance under which some samples come out as the wrong digit (the
failure the papers fix). The reward / alignment model is a linear discriminant classifier
fitted to the real digits (:func:`~trainlab.diffusion.digits.train_digit_classifier`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainlab.diffusion.digits import load_digits_tensor, train_digit_classifier
from trainlab.diffusion.mixtures import GaussianMixture
from trainlab.diffusion.samplers import EpsFn
from trainlab.diffusion.schedules import NoiseSchedule, vp_schedule
from trainlab.errors import check_range


class DigitsReward:
    """The reward side shared by the digits models (exact or trained): a ``classifier``
    attribute (a module mapping ``(n, 1, 8, 8)`` images to 10 logits) read as a reward."""

    classifier: nn.Module

    def log_prob_digit(self, x: torch.Tensor, digit: int) -> torch.Tensor:
        """``log p_clf(digit | x)`` for flattened images ``(n, 64)``."""
        return torch.log_softmax(self.classifier(x.reshape(-1, 1, 8, 8)), -1)[:, digit]

    def predicted(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's digit for flattened images ``(n, 64)``."""
        return self.classifier(x.reshape(-1, 1, 8, 8)).argmax(-1)


@dataclass(frozen=True)
class DigitsModel(DigitsReward):
    """The unconditional mixture, one component per digit, the schedule and the classifier."""

    mixture: GaussianMixture
    components: tuple[GaussianMixture, ...]
    schedule: NoiseSchedule
    classifier: nn.Module

    def guided_denoiser(self, digit: int, weight: float) -> EpsFn:
        """The CFG denoiser for ``digit`` at guidance ``weight`` (module docstring)."""
        check_range("digit", digit, low=0, high=9, owner="DigitsModel.guided_denoiser")
        uncond = self.mixture.denoiser(self.schedule)
        cond = self.components[digit].denoiser(self.schedule)

        def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            e_u = uncond(x, t)
            return e_u + weight * (cond(x, t) - e_u)

        return eps


def digits_model(*, ridge: float = 0.02) -> DigitsModel:
    """Fit the class-conditional Gaussians (weights = class frequencies) and train the
    classifier on all 1797 digits; linear VP schedule T = 1000."""
    check_range("ridge", ridge, low=0.0, low_open=True, owner="digits_model")
    images, labels = load_digits_tensor()
    flat = images.flatten(1)
    eye = torch.eye(64, dtype=torch.float64)
    means = torch.stack([flat[labels == c].mean(0) for c in range(10)])
    covs = torch.stack([torch.cov(flat[labels == c].T) + ridge * eye for c in range(10)])
    weights = torch.bincount(labels, minlength=10).to(torch.float64)
    mix = GaussianMixture(weights / weights.sum(), means, covs)
    comps = tuple(GaussianMixture(torch.ones(1, dtype=torch.float64), means[c:c + 1],
                                  covs[c:c + 1]) for c in range(10))
    clf = train_digit_classifier(images, labels)
    return DigitsModel(mix, comps, vp_schedule(), clf)


__all__ = ["DigitsModel", "DigitsReward", "digits_model"]
