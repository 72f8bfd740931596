r"""A small autoregressive model with a per-token diffusion loss, and how a condition error
propagates along the generated sequence.

"Condition Errors Refinement in Autoregressive Image Generation with Diffusion Loss" (Zhou,
Li & Shen, ICLR 2026, papers.md row 5) studies MAR-style generators: a backbone maps the
tokens generated so far to a condition :math:`c_i`, and a small denoiser
:math:`\varepsilon_\theta(x_t, t, c_i)` trained with the diffusion (epsilon) loss samples token
i. Its Theorem 2 (as summarised publicly; the full text was not available) bounds the
conditional score so that the influence of a condition error decays geometrically along the
autoregressive order. Toy version here: sequences of a stable linear-Gaussian AR(1) process
:math:`x_i = A x_{i-1} + \xi_i` (:math:`x_{-1} = 0`, :math:`\xi_i \sim N(0, Q)`), a linear
backbone :math:`c_i = W x_{i-1} + b` and an MLP head on :math:`(x_t, \text{time features},
c_i)`, trained jointly by the simple DSM loss (:mod:`trainlab.diffusion.dsm`) through the
backbone, as MAR trains its backbone through the diffusion loss. For the true process an
error :math:`\delta` in the first condition moves token i by :math:`A^i\delta`, so the decay
rate to recover is the spectral radius of A.

Deviations from the paper: a linear backbone on the previous token replaces the masked
transformer over image tokens; the head is a 2-hidden-layer MLP; data are 2-D AR(1)
sequences, not VAE latents of ImageNet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import skip_init

from trainlab.diffusion._registry import DIFFUSION
from trainlab.diffusion.dsm import time_features
from trainlab.diffusion.samplers import ddim_step
from trainlab.diffusion.schedules import NoiseSchedule
from trainlab.errors import check_range


def ar1_sequences(n: int, length: int, a: torch.Tensor, noise_std: float = 0.5, *,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` sequences ``(n, length, d)`` of ``x_i = A x_{i-1} + noise_std * N(0, I)``,
    ``x_{-1} = 0``."""
    check_range("length", length, low=1, owner="ar1_sequences")
    d = a.shape[0]
    x, out = torch.zeros(n, d, dtype=torch.float64), []
    for _ in range(length):
        x = x @ a.T + noise_std * torch.randn(n, d, generator=generator, dtype=torch.float64)
        out.append(x)
    return torch.stack(out, 1)


class ARDiffusionModel(nn.Module):
    """Linear backbone (previous token -> condition) and MLP diffusion head."""

    def __init__(self, dim: int, num_steps: int, *, width: int = 64,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.num_steps = num_steps
        def linear(fan_in: int, fan_out: int) -> nn.Linear:
            # no default init (it would draw from the global RNG): the weights come below
            return skip_init(nn.Linear, fan_in, fan_out, dtype=torch.float64)

        self.backbone = linear(dim, dim)
        self.head = nn.Sequential(linear(dim + 5 + dim, width), nn.SiLU(),
                                  linear(width, width), nn.SiLU(), linear(width, dim))
        with torch.no_grad():
            for p in self.parameters():
                fan_in = p.shape[-1] if p.ndim > 1 else 1
                p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64)
                        / math.sqrt(fan_in) * (1.0 if p.ndim > 1 else 0.0))

    def condition(self, prev: torch.Tensor) -> torch.Tensor:
        return self.backbone(prev)

    def eps(self, xt: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        feats = time_features(t, self.num_steps).to(xt.dtype)
        return self.head(torch.cat([xt, feats, cond], -1))


def train_ar_diffusion(model: ARDiffusionModel, seqs: torch.Tensor, schedule: NoiseSchedule,
                       *, steps: int = 1500, batch: int = 512, lr: float = 3e-3,
                       generator: torch.Generator | None = None) -> list[float]:
    """Adam on the per-token DSM loss of (previous token, token) pairs; returns the losses."""
    prev = torch.cat([torch.zeros_like(seqs[:, :1]), seqs[:, :-1]], 1).flatten(0, 1)
    tok = seqs.flatten(0, 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(tok), (batch,), generator=generator)
        t = torch.randint(0, schedule.num_steps, (batch,), generator=generator)
        eps = torch.randn(batch, tok.shape[1], generator=generator, dtype=torch.float64)
        abar = schedule.abar(t)[:, None]
        xt = abar.sqrt() * tok[idx] + (1 - abar).sqrt() * eps
        loss = (model.eps(xt, t, model.condition(prev[idx])) - eps).pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def generate(model: ARDiffusionModel, schedule: NoiseSchedule, noise: torch.Tensor, *,
             num_steps: int = 20, condition_error: torch.Tensor | None = None,
             refine: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Generate sequences token by token with DDIM (eta 0) from the initial noises ``noise``
    ``(n, length, d)``; ``condition_error`` is added to the first token's condition;
    ``refine(i, conditions)`` (e.g. an optimal-transport refinement,
    :mod:`trainlab.diffusion.zhou2026_condition_ot`) replaces the ``(n, d)`` conditions of
    position i before its token is sampled."""
    n, length, d = noise.shape
    ts = schedule.inference_timesteps(num_steps)
    prev, out = torch.zeros(n, d, dtype=torch.float64), []
    for i in range(length):
        cond = model.condition(prev)
        if i == 0 and condition_error is not None:
            cond = cond + condition_error
        if refine is not None:
            cond = refine(i, cond)
        x = noise[:, i]
        for j, t in enumerate(ts.tolist()):
            s = int(ts[j + 1]) if j + 1 < len(ts) else -1
            e = model.eps(x, torch.full((n,), t), cond)
            x = ddim_step(x, e, schedule.abar(t), schedule.abar(s))
        out.append(x)
        prev = x
    return torch.stack(out, 1)


@dataclass(frozen=True)
class ErrorDecay:
    """Mean displacement of each token caused by the first condition's error, and the fitted
    geometric rate (exp of the slope of its log over positions 1..L-1)."""

    displacement: list[float]
    rate: float


def condition_error_decay(model: ARDiffusionModel, schedule: NoiseSchedule,
                          noise: torch.Tensor, error: torch.Tensor, *, num_steps: int = 20
                          ) -> ErrorDecay:
    """Generate with and without ``error`` on the first condition (same noises) and measure
    ``mean_n ||x_i(error) - x_i||`` along the sequence."""
    base = generate(model, schedule, noise, num_steps=num_steps)
    pert = generate(model, schedule, noise, num_steps=num_steps, condition_error=error)
    disp = (pert - base).norm(dim=-1).mean(0)
    pos = torch.arange(1, len(disp), dtype=torch.float64)
    logd = disp[1:].log()
    slope = ((pos - pos.mean()) * (logd - logd.mean())).sum() / (pos - pos.mean()).pow(2).sum()
    return ErrorDecay(disp.tolist(), math.exp(slope.item()))


DIFFUSION.register("ar-diffusion-loss", train_ar_diffusion, papers=(5,),
                   summary="autoregressive model with a per-token diffusion head; decay of a "
                           "condition error along the sequence")

__all__ = ["ARDiffusionModel", "ErrorDecay", "ar1_sequences", "condition_error_decay",
           "generate", "train_ar_diffusion"]
