"""Attention-logit growth and output-logit divergence appear in small transformers at high
learning rates, and qk-layernorm and the z-loss remove them (Wortsman et al., "Small-scale
proxies for large-scale Transformer training instabilities", 2023; papers.md row 98)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.models import build_model
from trainlab.models.transformer import with_z_loss
from trainlab.optim import ScheduleLR, build_optimizer, build_schedule
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon
from trainlab.probes.attention_logits import max_attention_logits
from trainlab.tasks import build_task


def _attention_entropy(model: nn.Module, tokens: torch.Tensor) -> float:
    """Smallest per-head attention entropy (nats), averaged over the batch and the query
    positions 1..T-1 (position 0 can only attend to itself), over all attention layers."""
    layers = [m for m in model.modules() if hasattr(m, "attention_logits")]
    seen: dict[int, torch.Tensor] = {}
    handles = [m.register_forward_pre_hook(lambda _m, args, i=i: seen.setdefault(i, args[0]))
               for i, m in enumerate(layers)]
    try:
        with torch.no_grad():
            model(tokens)
            lowest = math.inf
            for i, m in enumerate(layers):
                p = torch.softmax(m.attention_logits(seen[i]), dim=-1)
                ent = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)  # (N, heads, T)
                lowest = min(lowest, ent[:, :, 1:].mean(dim=(0, 2)).min().item())
    finally:
        for h in handles:
            h.remove()
    return lowest


class AttentionLogitGrowth(Phenomenon):
    """A 2-layer pre-LN ``transformer`` (d_model 32, 2 heads of 16) on the ``sequence`` task
    (vocabulary 16, length 8, label = the token 2 places before the last), trained with the
    paper's optimizer: AdamW, betas (0.9, 0.95), eps 1e-8, linear warmup (10% of the steps)
    then cosine decay to 1e-5, *independent* weight decay 1e-4 (torch's decay divided by the
    peak lr), batch 64. With and without qk-layernorm at the high learning rates
    (3e-2, 1e-1, 3e-1), and a qk-layernorm run with the z-loss (coefficient 1e-4, the paper's)
    at lr 1e-1. 300 steps per run; quick mode runs lr 1e-1 only. Measured: the largest
    attention logit (``attention-logits`` probe), the smallest per-head attention entropy,
    the final training loss (full training set), and the mean output log Z.

    Pass criterion (the notes' B10, written before running): at the highest lr the largest
    attention logit without qk-layernorm is > 5x the qk-layernorm one and some head's entropy
    is < 0.2 nats (entropy collapse); qk-layernorm reaches a lower final loss at >= 2 of the 3
    high lrs (quick: at the one lr); with the z-loss |mean log Z| < 1, while without it
    log Z drifts by > 2 from its initial value.

    History: quick mode first ran 150 steps; there the z-loss had only brought log Z from 28
    (no z-loss) to 8, because a 1e-4 coefficient needs the cross-entropy to be nearly solved
    before it dominates. Both modes now run 300 steps (log Z 0.03 with the z-loss); the
    thresholds were not changed.

    Result (seed 0; quick = the lr 0.1 column): PASS. The largest attention logit without
    qk-layernorm grows with the lr (160, 4066, 48983 at lr 3e-2, 1e-1, 3e-1) against 7, 14,
    95 with it (ratio 516 at lr 0.3), and one head's entropy falls to 2e-5 nats; qk-layernorm
    ends at a lower loss at all 3 lrs, but both runs reach a near-zero loss (1e-5 to 1e-7):
    this task is easy enough that the logit growth never makes the loss diverge, so the loss
    check is weak evidence. log Z drifts from 3 to 26-30 without the z-loss (upwards, where
    the paper saw it go negative) and ends at 0.03 with it.

    Deviations: the paper trains language models on C4 for 1e5 steps with a 5e3-step warmup;
    here the task is tiny and synthetic and runs are a few hundred steps, so only the
    direction of the effects can be compared, not the paper's loss values.
    """

    name = "attention-logit-growth"
    papers = (98,)
    claim = ("At high learning rates the attention logits of a small transformer grow until "
             "attention collapses to one-hot, and the output log-normalizer log Z drifts; "
             "qk-layernorm and the z-loss prevent both.")

    LRS = (3e-2, 1e-1, 3e-1)

    def _train(self, task: Any, lr: float, steps: int, seed: int, *, qk: bool,
               z: bool) -> dict[str, float]:
        g = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():  # torch's default inits draw from the global RNG
            torch.manual_seed(seed)
            model = build_model("transformer", (8,), 16, d_model=32, heads=2, layers=2,
                                qk_layernorm=qk)
        opt = build_optimizer("adamw", model.parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-8,
                              weight_decay=1e-4 / lr)
        sched = ScheduleLR(opt, build_schedule("cosine", steps, warmup=0.1, floor=1e-5 / lr))
        loss_fn = with_z_loss(F.cross_entropy, 1e-4) if z else F.cross_entropy
        xtr, ytr = task.x_train, task.y_train
        with torch.no_grad():
            log_z0 = torch.logsumexp(model(xtr), -1).mean().item()
        logit_max = 0.0
        for k in range(steps):
            idx = torch.randint(0, len(xtr), (64,), generator=g)
            opt.zero_grad()
            loss_fn(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
            sched.step()
            if k % 25 == 0 or k == steps - 1:
                per = max_attention_logits(model, xtr[:256])
                logit_max = max(logit_max, max(v.item() for v in per.values()))
        with torch.no_grad():
            out = model(xtr)
            loss = F.cross_entropy(out, ytr).item()
            log_z = torch.logsumexp(out, -1).mean().item()
        return {"logit_max": logit_max, "entropy": _attention_entropy(model, xtr[:256]),
                "loss": loss, "log_z": log_z, "log_z0": log_z0}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        task = build_task("sequence", vocab_size=16, length=8, rule="lag", lag=2,
                          n_train=2048, n_test=256, data_seed=seed)
        steps = 300
        lrs = (1e-1,) if quick else self.LRS
        runs = {f"{'qk' if qk else 'plain'}@{lr:g}": self._train(task, lr, steps, seed, qk=qk,
                                                                   z=False)
                for lr in lrs for qk in (False, True)}
        runs["qk+z@0.1"] = self._train(task, 1e-1, steps, seed, qk=True, z=True)
        return {"lrs": list(lrs), "steps": steps, "runs": runs}

    def check(self, data: dict[str, Any]) -> list[Check]:
        runs, lrs = data["runs"], data["lrs"]
        top = f"{lrs[-1]:g}"
        ratio = runs[f"plain@{top}"]["logit_max"] / runs[f"qk@{top}"]["logit_max"]
        entropy = runs[f"plain@{top}"]["entropy"]
        wins = sum(runs[f"qk@{lr:g}"]["loss"] < runs[f"plain@{lr:g}"]["loss"] for lr in lrs)
        need = min(2, len(lrs))
        z_on = abs(runs["qk+z@0.1"]["log_z"])
        drift = abs(runs["qk@0.1"]["log_z"] - runs["qk@0.1"]["log_z0"])
        return [
            Check(f"max attention logit, plain / qk-LN at lr {top}", ratio, "> 5", ratio > 5),
            Check(f"smallest head entropy without qk-LN at lr {top} (nats)", entropy, "< 0.2",
                  entropy < 0.2),
            Check("high lrs where qk-LN ends at a lower loss", wins, f">= {need} of {len(lrs)}",
                  wins >= need),
            Check("|mean log Z| with z-loss (lr 0.1)", z_on, "< 1", z_on < 1),
            Check("log Z drift without z-loss (lr 0.1)", drift, "> 2", drift > 2),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        runs, lrs = data["runs"], data["lrs"]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
        for key, label in (("plain", "no qk-LN"), ("qk", "qk-layernorm")):
            a1.plot(lrs, [runs[f"{key}@{lr:g}"]["logit_max"] for lr in lrs], "o-", label=label)
            a2.plot(lrs, [runs[f"{key}@{lr:g}"]["loss"] for lr in lrs], "o-", label=label)
        a1.set(xscale="log", yscale="log", xlabel="peak lr", ylabel="max attention logit")
        a2.set(xscale="log", yscale="log", xlabel="peak lr", ylabel="final training loss")
        a1.legend(fontsize=8)
        return fig


PHENOMENA.register("attention-logit-growth", AttentionLogitGrowth, papers=(98,),
                   reproduces=True,
                   summary="high lr: attention logits grow, log Z drifts; qk-LN and z-loss fix")
