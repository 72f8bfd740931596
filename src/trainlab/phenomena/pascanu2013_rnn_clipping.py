"""Vanilla RNNs suffer exploding gradients when the recurrent weights are large, and
gradient-norm clipping tames them; with a contracting recurrence gradients vanish (Pascanu,
Mikolov & Bengio, "On the difficulty of training Recurrent Neural Networks", ICML 2013;
papers.md row 31)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from trainlab.init import orthogonal_
from trainlab.models import build_model
from trainlab.models.rnn import ElmanRNN
from trainlab.optim import build_optimizer
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.tasks.adding import adding_problem


def _adding_rnn(hidden: int, gain: float, generator: torch.Generator) -> ElmanRNN:
    """tanh ``rnn`` (2 inputs, 1 output, readout of the last state) with recurrent weights
    ``gain`` x a random orthogonal matrix, input weights N(0, 1/2), readout N(0, 1/hidden),
    zero biases."""
    model = build_model("rnn", (50, 2), 1, hidden=hidden)
    with torch.no_grad():
        orthogonal_(model.recurrent_weight, gain=gain, generator=generator)
        model.input_weight.normal_(0, 1 / math.sqrt(2), generator=generator)
        model.rnn.bias_hh_l0.zero_()
        model.rnn.bias_ih_l0.zero_()
        model.out.weight.normal_(0, 1 / math.sqrt(hidden), generator=generator)
        model.out.bias.zero_()
    return model


class RNNClipping(Phenomenon):
    """The adding problem (T = 50, :func:`trainlab.tasks.adding.adding_problem`) with a tanh
    ``rnn``, hidden 32, recurrent weights 1.5 x a random orthogonal matrix; SGD lr 0.1, batch 64,
    400 steps (quick 200), without clipping and with ``clipped_sgd`` (max norm 1). Also, with
    recurrent weights 0.9 x orthogonal, the norm of the state Jacobian ``d h_T / d h_0`` on a batch
    of sequences.

    Pass criterion (the notes' B15, from the paper's claims): without clipping some step has a
    gradient norm > 100x the run's median or the loss becomes non-finite; with clipping the
    loss stays finite and its mean over the last 10% of steps is below that of the first
    10%; and with sigma_max(W_rec) = 0.9 < 1 (tanh: gamma = 1) the Jacobian norm is at most
    the paper's bound 0.9^T (vanishing gradients, a theorem, so no tolerance).

    Why the check measures the claim: the clipped and unclipped runs share the model, init
    and data stream and differ only in clipping, so the explosion and its taming are
    attributed to the recurrent scale and the clip; the vanishing side is the paper's bound
    itself (||dh_T/dh_0|| <= gamma sigma_max^T for tanh), checked exactly.

    Deviations from the paper: the adding problem (modern variant, T = 50) with a small tanh RNN and
    recurrent weights scaled to 1.5 and 0.9 times an orthogonal matrix, chosen here (the notes'
    setting above); the paper's other tasks and its regularizer for vanishing gradients are not
    reproduced.
    """

    name = "rnn-clipping"
    papers = (31,)
    paper_figure = ("Sec. 3 (exploding/vanishing conditions) and the adding-problem experiments "
                    "(figure numbers not re-read)")
    scale_downs = ("T = 50 adding problem, hidden 32",
                   "400 SGD steps (quick: 200)",)
    claim = ("Large recurrent weights make RNN gradients explode, which gradient-norm "
             "clipping tames; contracting recurrent weights make them vanish.")

    def _train(self, optimizer: str, steps: int, seed: int) -> dict[str, np.ndarray]:
        g = torch.Generator().manual_seed(seed)
        model = _adding_rnn(32, 1.5, g)
        extra = {"max_norm": 1.0} if optimizer == "clipped-sgd" else {}
        opt = build_optimizer(optimizer, model.parameters(), lr=0.1, **extra)
        data = torch.Generator().manual_seed(seed + 1)
        losses, norms = [], []
        for _ in range(steps):
            x, y = adding_problem(64, 50, generator=data)
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
        model = _adding_rnn(32, 0.9, g)
        x, _ = adding_problem(8, 50, generator=g)
        h0 = torch.zeros(1, 8, 32, requires_grad=True)
        _, h_t = model.rnn(x, h0)
        jac = torch.stack([torch.autograd.grad(h_t[0, :, i].sum(), h0, retain_graph=True)[0][0]
                           for i in range(32)], dim=1)  # (batch, out, in)
        return float(torch.linalg.matrix_norm(jac, ord=2).max())

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        steps = 200 if quick else 400
        return {"plain": self._train("sgd", steps, seed),
                "clipped": self._train("clipped-sgd", steps, seed),
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
