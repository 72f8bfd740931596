"""Vanilla RNNs suffer exploding gradients when the recurrent weights are large, and
gradient-norm clipping tames them; with a contracting recurrence gradients vanish (Pascanu,
Mikolov & Bengio, "On the difficulty of training Recurrent Neural Networks", ICML 2013;
papers.md row 31)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.init import orthogonal_
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon


class _AddingRNN(nn.Module):
    """tanh RNN (torch's ``nn.RNN``) with a linear readout of the last state. Kept here:
    ``trainlab.models`` has no recurrent model yet."""

    def __init__(self, hidden: int, gain: float, generator: torch.Generator):
        super().__init__()
        self.rnn = nn.RNN(2, hidden, nonlinearity="tanh", batch_first=True)
        self.out = nn.Linear(hidden, 1)
        with torch.no_grad():
            orthogonal_(self.rnn.weight_hh_l0, gain=gain, generator=generator)
            self.rnn.weight_ih_l0.normal_(0, 1 / math.sqrt(2), generator=generator)
            self.rnn.bias_hh_l0.zero_()
            self.rnn.bias_ih_l0.zero_()
            self.out.weight.normal_(0, 1 / math.sqrt(hidden), generator=generator)
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        return self.out(h[:, -1])


def adding_batch(batch: int, length: int, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem: channel 0 holds U(0, 1) values, channel 1 marks two positions;
    the target is the sum of the two marked values."""
    values = torch.rand(batch, length, generator=generator)
    marks = torch.zeros(batch, length)
    first = torch.randint(0, length // 2, (batch,), generator=generator)
    second = torch.randint(length // 2, length, (batch,), generator=generator)
    marks[torch.arange(batch), first] = 1.0
    marks[torch.arange(batch), second] = 1.0
    return torch.stack([values, marks], dim=-1), (values * marks).sum(1, keepdim=True)


class RNNClipping(Phenomenon):
    """The adding problem (T = 50) with a tanh RNN, hidden 32, recurrent weights
    1.5 x a random orthogonal matrix; SGD lr 0.1, batch 64, 400 steps (quick 200), without
    clipping and with ``clipped_sgd`` (max norm 1). Also, with recurrent weights 0.9 x
    orthogonal, the norm of the state Jacobian ``d h_T / d h_0`` on a batch of sequences.

    Pass criterion (the notes' B15, from the paper's claims): without clipping some step has a
    gradient norm > 100x the run's median or the loss becomes non-finite; with clipping the
    loss stays finite and its mean over the last 10% of steps is below that of the first
    10%; and with sigma_max(W_rec) = 0.9 < 1 (tanh: gamma = 1) the Jacobian norm is at most
    the paper's bound 0.9^T (vanishing gradients, a theorem, so no tolerance).
    """

    name = "rnn-clipping"
    papers = (31,)
    claim = ("Large recurrent weights make RNN gradients explode, which gradient-norm "
             "clipping tames; contracting recurrent weights make them vanish.")

    def _train(self, optimizer: str, steps: int, seed: int) -> dict[str, np.ndarray]:
        g = torch.Generator().manual_seed(seed)
        model = _AddingRNN(32, 1.5, g)
        extra = {"max_norm": 1.0} if optimizer == "clipped_sgd" else {}
        opt = build_optimizer(optimizer, model.parameters(), lr=0.1, **extra)
        data = torch.Generator().manual_seed(seed + 1)
        losses, norms = [], []
        for _ in range(steps):
            x, y = adding_batch(64, 50, data)
            opt.zero_grad()
            loss = (model(x) - y).pow(2).mean()
            loss.backward()
            norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
            losses.append(loss.item())
            norms.append(norm.item())
            if not math.isfinite(losses[-1]):
                break
            opt.step()
        return {"loss": np.array(losses), "grad_norm": np.array(norms)}

    def _jacobian_norm(self, seed: int) -> float:
        g = torch.Generator().manual_seed(seed + 2)
        model = _AddingRNN(32, 0.9, g)
        x, _ = adding_batch(8, 50, g)
        h0 = torch.zeros(1, 8, 32, requires_grad=True)
        _, h_t = model.rnn(x, h0)
        jac = torch.stack([torch.autograd.grad(h_t[0, :, i].sum(), h0, retain_graph=True)[0][0]
                           for i in range(32)], dim=1)  # (batch, out, in)
        return float(torch.linalg.matrix_norm(jac, ord=2).max())

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        steps = 200 if quick else 400
        return {"plain": self._train("sgd", steps, seed),
                "clipped": self._train("clipped_sgd", steps, seed),
                "jacobian_norm": self._jacobian_norm(seed), "jacobian_bound": 0.9**50}

    def check(self, data: dict[str, Any]) -> list[Check]:
        plain, clipped = data["plain"], data["clipped"]
        norms = plain["grad_norm"][np.isfinite(plain["grad_norm"])]
        blew_up = not (np.isfinite(plain["loss"]).all() and norms.size == plain["grad_norm"].size)
        spike = float(norms.max() / np.median(norms)) if norms.size else 0.0
        c = clipped["loss"]
        tenth = max(1, c.size // 10)
        ratio = float(c[-tenth:].mean() / c[:tenth].mean()) if np.isfinite(c).all() else math.inf
        return [
            Check("unclipped: max / median finite gradient norm", spike,
                  "> 100 (or a non-finite loss)", spike > 100 or blew_up),
            Check("clipped: late / early mean loss", ratio, "< 1 (finite, decreasing)",
                  ratio < 1),
            Check("||dh_T/dh_0|| / 0.9^T at sigma_max = 0.9",
                  data["jacobian_norm"] / data["jacobian_bound"], "<= 1 (vanishing bound)",
                  data["jacobian_norm"] <= data["jacobian_bound"]),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3))
        for key in ("plain", "clipped"):
            a1.plot(data[key]["grad_norm"], label=key, lw=0.8)
            a2.plot(data[key]["loss"], label=key, lw=0.8)
        a1.set(yscale="log", xlabel="step", ylabel="gradient norm")
        a2.set(yscale="log", xlabel="step", ylabel="loss")
        a1.legend(fontsize=8)
        return fig


PHENOMENA.register("rnn-clipping", RNNClipping, papers=(31,), reproduces=True,
                   summary="exploding RNN gradients and their taming by norm clipping")
