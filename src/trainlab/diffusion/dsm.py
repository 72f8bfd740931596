r"""Denoising score matching (the epsilon-prediction loss) and the (x_t, t) -> eps regression.

.. math:: L(\theta) = E_{x_0,\ t \sim U\{0..T-1\},\ \varepsilon \sim N(0,I)}
          \|\varepsilon - \varepsilon_\theta(\sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}
          \varepsilon,\ t)\|^2

(Ho, Jain & Abbeel 2020, eq. 14, the "simple" loss; Vincent 2011 for the score-matching
identity). Its minimiser is :math:`\varepsilon^*(x, t) = -\sqrt{1-\bar\alpha_t}\nabla\log
p_t(x)`, so for each fixed draw of :math:`(x_0, t, \varepsilon)` this is a regression with
noisy labels: input :math:`(x_t, t)`, label :math:`\varepsilon` (Han, Razaviyayn & Xu 2024,
papers.md row 85). :func:`noised_regression_data` materialises that regression so it trains
through the ordinary :class:`~trainlab.train.Trainer`; a plain MLP sees ``t`` through
:func:`time_features`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainlab.diffusion.samplers import EpsFn, _bcast, as_schedule
from trainlab.diffusion.schedules import NoiseSchedule
from trainlab.errors import check_range

NUM_TIME_FEATURES = 5


def time_features(t: torch.Tensor, num_steps: int) -> torch.Tensor:
    r"""``(n, 5)`` features of (real or integer) timesteps: with :math:`s = (t+1)/T`,
    :math:`[s, \cos\pi s, \sin\pi s, \cos 2\pi s, \sin 2\pi s]`."""
    s = (torch.as_tensor(t, dtype=torch.float64) + 1) / num_steps
    return torch.stack([s, torch.cos(math.pi * s), torch.sin(math.pi * s),
                        torch.cos(2 * math.pi * s), torch.sin(2 * math.pi * s)], -1)


def forward_process(x0: torch.Tensor, t: torch.Tensor, schedule: NoiseSchedule,
                    noise: torch.Tensor) -> torch.Tensor:
    r""":math:`x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon` (per-row t)."""
    abar = schedule.abar(t)
    return _bcast(abar.sqrt(), x0) * x0 + _bcast((1 - abar).sqrt(), x0) * noise


def draw_noised(x0: torch.Tensor, schedule: NoiseSchedule, *,
                generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One draw per row: ``(x_t, t, eps)`` with ``t ~ U{0..T-1}``, ``eps ~ N(0, I)``."""
    t = torch.randint(0, schedule.num_steps, (x0.shape[0],), generator=generator)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    return forward_process(x0, t, schedule, eps), t, eps


def dsm_loss(eps_fn: EpsFn, x0: torch.Tensor, schedule: NoiseSchedule | object, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """The simple DSM loss (module docstring), one (t, eps) draw per example, mean over the
    batch of the squared error summed over coordinates."""
    sched = as_schedule(schedule)
    xt, t, eps = draw_noised(x0, sched, generator=generator)
    return (eps_fn(xt, t) - eps).pow(2).flatten(1).sum(1).mean()


def noised_regression_data(x0: torch.Tensor, schedule: NoiseSchedule, draws: int = 1, *,
                           generator: torch.Generator | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DSM regression as a fixed data set: ``draws`` noisings of each row of ``x0``
    (flattened), returning inputs ``[x_t, time_features(t)]``, labels ``eps`` and ``t``."""
    check_range("draws", draws, low=1, owner="noised_regression_data")
    rep = x0.flatten(1).repeat(draws, 1)
    xt, t, eps = draw_noised(rep, schedule, generator=generator)
    inputs = torch.cat([xt, time_features(t, schedule.num_steps).to(xt.dtype)], 1)
    return inputs, eps, t


class FeatureDenoiser(nn.Module):
    """``eps_fn`` view of a network trained on ``[x_t, time_features(t)]`` inputs (e.g. the
    model of a ``diffusion-*`` task): flattens ``x``, appends the features, reshapes back."""

    def __init__(self, net: nn.Module, num_steps: int):
        super().__init__()
        self.net, self.num_steps = net, num_steps

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        feats = time_features(torch.as_tensor(t).expand(x.shape[0]), self.num_steps)
        return self.net(torch.cat([x.flatten(1), feats.to(x.dtype)], 1)).reshape(x.shape)


__all__ = ["NUM_TIME_FEATURES", "FeatureDenoiser", "draw_noised", "dsm_loss", "forward_process",
           "noised_regression_data", "time_features"]
