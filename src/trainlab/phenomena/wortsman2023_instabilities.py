"""Attention-logit growth makes a small transformer's final loss sensitive to the learning
rate, and qk-layernorm (and, for the output logits, the z-loss) removes that sensitivity
(Wortsman et al., "Small-scale proxies for large-scale Transformer training instabilities",
2023; papers.md row 98)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.models import build_model
from trainlab.models.transformer import with_z_loss
from trainlab.optim import ScheduleLR, build_optimizer, build_schedule
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, map_runs, seed_effect_check
from trainlab.probes.attention_logits import max_attention_logits


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


def zipf_probs(vocab: int, exponent: float) -> torch.Tensor:
    r"""Token probabilities :math:`p_k \propto (k + 1)^{-s}`, ``k = 0..vocab-1``, float64
    (Zipf's law of word frequencies; ``exponent`` :math:`s = 0` is uniform)."""
    p = torch.arange(1, vocab + 1, dtype=torch.float64).pow(-exponent)
    return p / p.sum()


def _draw(shape: tuple[int, int], vocab: int, exponent: float,
          generator: torch.Generator) -> torch.Tensor:
    """Tokens i.i.d. from :func:`zipf_probs` (uniform: ``randint``; else the inverse of
    the float64 CDF at uniform draws)."""
    if exponent == 0.0:
        return torch.randint(0, vocab, shape, generator=generator)
    cdf = zipf_probs(vocab, exponent).cumsum(0)
    u = torch.rand(shape, generator=generator, dtype=torch.float64) * cdf[-1]
    return torch.searchsorted(cdf, u, right=True).clamp_max(vocab - 1)


def noisy_copy_tokens(n: int, length: int, vocab: int, keep: float,
                      generator: torch.Generator, exponent: float = 0.0) -> torch.Tensor:
    """``n`` sequences whose first half is i.i.d. tokens (probabilities
    :func:`zipf_probs`, uniform at ``exponent`` 0) and whose second half repeats the first,
    each token kept with probability ``keep`` and otherwise replaced by a fresh draw:
    predicting the second half needs attention to the token ``length // 2`` positions back,
    and the best achievable loss is well above 0 (the first half and the replaced tokens
    are unpredictable)."""
    half = length // 2
    first = _draw((n, half), vocab, exponent, generator)
    noise = _draw((n, length - half), vocab, exponent, generator)
    kept = torch.rand(n, length - half, generator=generator) < keep
    second = torch.where(kept, first[:, :length - half], noise)
    return torch.cat([first, second], 1)


def best_loss(length: int, vocab: int, keep: float, exponent: float = 0.0) -> float:
    r"""The entropy (nats per predicted token) of :func:`noisy_copy_tokens`' next-token
    targets, positions 1..length-1: the loss of the Bayes predictor. A first-half target
    has the entropy :math:`H(p)`; a second-half one, given its source token :math:`a`, is
    :math:`a` with probability :math:`\kappa + (1-\kappa) p_a` and :math:`b \ne a` with
    :math:`(1-\kappa) p_b` (:math:`\kappa` = ``keep``), averaged over :math:`a \sim p`."""
    half = length // 2
    p = zipf_probs(vocab, exponent)
    q = (1 - keep) * p
    xlogx = torch.special.xlogy(q, q)
    hit = keep + q
    copy = -(p * (torch.special.xlogy(hit, hit) + xlogx.sum() - xlogx)).sum().item()
    entropy = -torch.special.xlogy(p, p).sum().item()
    return ((half - 1) * entropy + (length - half) * copy) / (length - 1)


def lr_sensitivity(losses: Any, initial: float) -> float:
    r"""The paper's LR sensitivity of a sweep: :math:`\mathbb{E}_\eta[\min(\ell(\eta),
    \ell_0) - \ell^*]` with :math:`\ell^*` the sweep's best final loss and :math:`\ell_0` the
    loss at initialization (a diverged run, ``nan``/``inf``, counts as :math:`\ell_0`)."""
    v = np.asarray(losses, dtype=float)
    capped = np.where(np.isfinite(v), np.minimum(v, initial), initial)
    return float(np.mean(capped - capped.min()))


VOCAB, EXPONENT, LENGTH, BATCH, KEEP = 512, 1.0, 24, 16, 0.9


def _ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _forward(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The model's logits in bfloat16 mixed precision (``torch.autocast``: float32 weights,
    bfloat16 matrix products), returned as float32 for the loss."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return model(tokens).float()


def _tokens(n: int, generator: torch.Generator) -> torch.Tensor:
    return noisy_copy_tokens(n, LENGTH, VOCAB, KEEP, generator, EXPONENT)


def train_run(lr: float, steps: int, seed: int, qk: bool, z: bool, weight_decay: float,
              n_held: int) -> dict[str, float]:
    """One run of :class:`AttentionLogitGrowth`'s sweep, self-contained (its init, data and
    held-out set are drawn from ``seed`` alone, so runs in separate processes give the same
    numbers as in one): the final held-out loss, the loss at init, the largest attention
    logit seen (every 100 steps), the smallest head entropy, the mean output log Z and the
    mean output logit (over the vocabulary and positions) at init and at the end. A
    non-finite training loss stops the run as diverged (loss ``inf``). ``weight_decay`` is
    the paper's *independent* decay (torch's divided by the peak ``lr``)."""
    held_out = _tokens(n_held, torch.Generator().manual_seed(10_000 + seed))
    g = torch.Generator().manual_seed(seed + 7)
    with torch.random.fork_rng():  # torch's default inits draw from the global RNG
        torch.manual_seed(seed)
        model = build_model("transformer", (LENGTH - 1,), VOCAB, d_model=64, heads=4,
                            layers=2, qk_layernorm=qk, readout="all", bias=False)
    opt = build_optimizer("adamw", model.parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-8,
                          weight_decay=weight_decay / lr)
    sched = ScheduleLR(opt, build_schedule("cosine", steps, warmup=0.05, floor=1e-5 / lr))
    loss_fn = with_z_loss(_ce, 1e-4) if z else _ce
    probe = held_out[:128, :-1]

    def evaluate() -> tuple[float, float, float]:
        with torch.no_grad():
            out = _forward(model, held_out[:, :-1])
            return (_ce(out, held_out[:, 1:]).item(), torch.logsumexp(out, -1).mean().item(),
                    out.mean().item())

    initial, log_z0, mean0 = evaluate()
    logit_max = 0.0
    for k in range(steps):
        tokens = _tokens(BATCH, g)
        opt.zero_grad()
        loss = loss_fn(_forward(model, tokens[:, :-1]), tokens[:, 1:])
        if not torch.isfinite(loss):
            return {"loss": math.inf, "initial": initial, "logit_max": math.inf,
                    "entropy": 0.0, "log_z": math.inf, "log_z0": log_z0,
                    "mean_logit": -math.inf, "mean_logit0": mean0}
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if k % 100 == 0 or k == steps - 1:
            per = max_attention_logits(model, probe)
            logit_max = max(logit_max, max(v.item() for v in per.values()))
    final, log_z, mean = evaluate()
    return {"loss": final, "initial": initial, "logit_max": logit_max,
            "entropy": _attention_entropy(model, probe), "log_z": log_z, "log_z0": log_z0,
            "mean_logit": mean, "mean_logit0": mean0}


class AttentionLogitGrowth(Phenomenon):
    """Next-token prediction where attention is needed and the best loss is well above 0
    (:func:`noisy_copy_tokens`: 24 tokens, the second half a noisy copy of the first, kept
    with probability 0.9, over a vocabulary of 512 tokens drawn by Zipf's law, p_k ~ 1/(k+1)
    (the top 32 tokens carry 60% of the mass, the rarest ~3e-4: a vocabulary much larger
    than its set of frequent tokens, as a 32k tokenizer on C4 is); Bayes loss 2.686 nats,
    :func:`best_loss`), fresh batches every step, as LM pretraining on C4 has; batch 16. A
    2-layer pre-LN ``transformer`` without biases (the paper's models have none; d_model 64,
    4 heads, every position predicted), run in bfloat16 mixed precision (the paper trains in
    bfloat16; here ``torch.autocast``: float32 weights and optimizer state, bfloat16 matrix
    products, the loss from the logits cast to float32; the held-out loss is evaluated the
    same way), trained with the paper's defaults (Sec. 2.1): AdamW, betas (0.9, 0.95), eps
    1e-8, gradient clipping at global norm 1, linear warmup over 5% of the steps then
    cosine decay to 1e-5, *independent* weight decay 1e-4 (torch's decay divided by the
    peak lr), z-loss 1e-4. The learning-rate sweep is the paper's, {3e-4, 1e-3, 3e-3, 1e-2,
    3e-2, 1e-1, 3e-1} (Sec. 2.2), in four arms: at the defaults without (``plain``) and with
    (``qk``) qk-layernorm, and at the setting of the paper's z-loss experiment (Sec. 3.1.2,
    Fig. 3: qk-layernorm, no weight decay) with (``qk-nowd-z``) and without (``qk-nowd``)
    the z-loss. 1000 steps per run (warmup 50 steps, the paper's 5%), 3 seeds. Measured:
    the final held-out loss (256 sequences), the loss at init, the largest attention logit
    (``attention-logits`` probe on 128 of them, every 100 steps), the smallest per-head
    attention entropy, and the mean output log Z and mean output logit at init and at the
    end. Each run draws its init, data and held-out set from its seed alone
    (:func:`train_run`), so full mode runs them in 2 processes (``map_runs``) with the
    numbers bit-identical to a serial run (a test checks this).

    Setting change (issue 12, fourth pass; the criterion below is unchanged): the run
    before it (vocabulary 32, uniform tokens, batch 32, length 32, biases, float32; Results
    below) FAILed on (c) and showed no output-logit drift at all. Diagnosis, small runs
    (qk-layernorm, no weight decay, no z-loss unless said; mean logit over the vocabulary
    and positions of 256 held-out sequences, init -> end): vocabulary 32, uniform, AdamW,
    500 steps: mean logit -0.02 -> 0.01 at lr 0.1 and -> 0.15 at lr 0.3 (log Z 3.6 -> 4.7):
    the cross-entropy's logit gradient sums to zero over the vocabulary, and with every
    token a frequent target Adam does not move the mean either. Zipf (s = 1) vocabulary
    512, batch 16, lr 0.3, 500 steps: mean logit -> -1.70 with AdamW, -> -0.03 with plain
    SGD at the same lr (the drift is Adam's per-coordinate normalisation: a rarely-targeted
    token gets a small but consistently positive logit gradient, which Adam turns into a
    step of ~lr); vocabulary 2048, lr 0.1: -> -1.8 (-2.0 without biases), log Z 7.8 -> 9.5.
    A head of 512 outputs of which only 32 are ever targets (480 never), bfloat16
    autocast, 1000 steps: mean logit -> -16.2 (lr 0.3) and -14.9 (lr 0.1) while the used
    tokens' logits stay at 0.5-1.1 and log Z at 4.5-5.2. So the lead's hypothesis holds for
    the drift: it needs Adam and a vocabulary with rarely- or never-targeted tokens, which
    the 32-token task lacked. Its second half did not show within 1000 steps: log Z stayed
    bounded (4-10), the held-out loss from bfloat16 logits equalled the float32 one to 3
    decimals in every run, and the z-loss did not change the final loss (lr 0.1: 2.020
    with it, 2.026 without; lr 0.3: 3.437 and 3.450, 500 and 1000 steps). The experiment
    was moved to the paper's setting along the axes the drift depends on (a Zipf
    vocabulary much larger than its frequent set, no biases, bfloat16) before its full
    run, with everything else and the criterion unchanged; batch 32 -> 16 and length 32 ->
    24 are for the 10-minute budget (the 512-output head costs more per token: 13 ms of CPU
    per step at batch 16 and length 32, 10.5 ms at length 24). One run per setting at lr
    1e-2 and 1e-1 (qk-layernorm, 1000 steps, length 32) checked, before the change, that the
    task trains at this length: 2.82 and 3.09 nats (Bayes 2.71 at length 32).

    Result at this setting (full, seeds 0, 100, 200; run with the CLI after the setting and
    criterion were committed; the one full run of this pass): FAIL (``reproduces=False``) on
    (a)'s ratio and on (c). (a): the ratio of median LR sensitivities (qk-layernorm /
    without) is 0.683 (criterion <= 0.5), while the per-seed gap 0.326 +- 0.022 nats
    (half-range) exceeds its spread; (b): the largest attention logit at lr 0.3 is 2.3e4x
    smaller with qk-layernorm (median; criterion > 5); (c): the ratio with / without the
    z-loss (qk-layernorm, no weight decay) is 1.013 (criterion <= 0.5) and the per-seed gap
    -0.027 +- 0.021 nats. Seed 0's runs, recomputed after the verdict with the same code
    (deterministic, so equal to the full run's), final held-out loss at lr 3e-4 .. 3e-1
    (Bayes 2.69, init 6.40, unigram predictor ~4.8): without qk-layernorm 4.80 3.50 2.79
    2.76 3.36 4.82 4.82; with it 4.71 3.48 2.79 2.76 2.82 3.07 4.80; no weight decay without
    the z-loss 4.69 3.44 2.79 2.77 2.79 2.83 4.74, with it 4.69 3.44 2.79 2.77 2.79 3.23
    4.66. So qk-layernorm removes the loss rise at lr 3e-2 and 1e-1 (attention logits 1.4e3
    and 1.0e5 without it, 16 and 31 with it) but in seed 0 no arm trains at lr 0.3 within
    1000 steps, and the two lowest lrs are undertrained in every arm; such shared terms keep
    the sensitivity ratio above 0.5. The z-loss changes nothing beyond seed noise: in seed 0
    the final mean output logit sits at -1.1 to -2.7 and log Z at 5.4 to 7.4 in every arm
    and lr (from -0.00 and 6.40 at init), with or without it and with or without weight
    decay; in a Zipf vocabulary every token is a target now and then, so the drift stays far
    smaller than the -15 seen when 480 of 512 tokens are never targets (diagnosis above),
    and nothing like the paper's divergence appears. Cost: 19 min 59 s user + 6 s system CPU
    (84 runs, one thread each, 2 processes), 35 min 4 s wall on the shared machine (1-minute
    load average 1.7-11.0, median 5.9, on 2 cores): about 10 minutes on 2 idle cores, the
    full-mode budget. Nothing was changed after the run. Not tried: more steps (the paper's
    divergence comes late in 1e5 steps), larger models, C4. The old setting (below) passed
    (a) (ratio 0.156, with lr 0.3 trained by qk-layernorm at 1000 steps); the move to the
    paper's vocabulary axis, made for (c), lost that PASS and did not bring (c)'s.

    Pass criterion (the paper's Fig. 1: without qk-layernorm the final loss rises at high
    learning rates, with it the loss-vs-lr curve stays flat, summarised by its LR
    sensitivity; written before running): (a) the LR sensitivity with qk-layernorm is at
    most half the one without (ratio of medians over seeds <= 0.5), and the per-seed
    difference (without - with) has a mean larger than its half-range over seeds; (b) the
    mechanism: at the top lr the largest attention logit without qk-layernorm is > 5x the
    qk-layernorm one (median over seeds); (c) the z-loss claim, at the paper's setting for
    it: with qk-layernorm and no weight decay, the LR sensitivity with the z-loss is at most
    half the one without (ratio of medians over seeds <= 0.5), and the per-seed difference
    (without - with) has a mean larger than its half-range over seeds. (c) was written,
    with its threshold, before any run of the no-weight-decay arms.

    Where (c) comes from (read from the paper's text, ar5iv rendering of arXiv 2309.14322):
    Sec. 3.1.2 says the output-logit divergence (logits drifting very negative, towards the
    end of training; Fig. 4 shows it for a 2.4M-parameter model at lr 0.1) is reproduced in
    small models at large learning rates, that it occurs in models *without weight decay*
    at every scale tested and the z-loss resolves it, and that weight decay also mitigates
    it for the larger models; Fig. 3 (whose caption says its models have qk-layernorm)
    summarises the effect on the loss-vs-lr curves. The Introduction says that both
    qk-layernorm and the z-loss reduce LR sensitivity and allow training across three
    orders of magnitude of lr. So the claim is an LR-sensitivity comparison with and
    without the z-loss, at qk-layernorm and no weight decay. Fig. 3's plotted values could
    not be read here (only its caption and the text), so the threshold is (a)'s: the text
    gives the z-loss the same strength of effect ("resolves") as qk-layernorm's, and a
    halving of the sensitivity is the least that reading supports.

    Check (c) replaced (issue 12): until this change (c) was "at the top lr, with the z-loss
    ``|mean log Z| < 1``, without it log Z drifts by > 2 from its initial value (medians),
    at weight decay 1e-4". It FAILed in the 1000-step full run (Result below: 4.19 and
    1.12) and was replaced *after* that FAIL, by issue 12's wording (the paper's headline is
    the LR sensitivity of the final loss over an lr sweep, with and without qk-layernorm /
    z-loss) and the paper's own claim above. The old check did not measure that claim: it
    asked where log Z sits, not whether the final loss depends on the lr; the cross-entropy
    is unchanged by adding a constant to every logit, so log Z's value alone does not move
    the loss in float32; the z-loss at 1e-4 adds a per-token gradient of only
    ``2e-4 * log Z * p_i`` (~7e-4 p_i at log Z ~3.6) to the logits, against the
    cross-entropy's ``p_i - y_i`` of order 1, so 1000 steps barely move log Z whatever the
    claim's truth; and it ran at weight decay 1e-4, not the paper's no-weight-decay setting
    of the z-loss experiment. The old numbers stay below as measured values; the final mean
    output logit of the no-weight-decay arms is drawn in the figure, and it and log Z are
    reported in the Result, with no criterion on them.

    Why the check measures the claim: the paper's headline is the learning-rate
    sensitivity of the final loss, and its LR sensitivity is a statistic of the whole sweep,
    so a fixed lr cannot pass it by luck; the task has an irreducible loss, so a run cannot
    reach ~0 loss at every lr and hide the instability (the setting before issue 12, a
    lagged-token lookup, was solved to 1e-5 at every lr, which made the loss check vacuous).
    In each comparison both arms share data, init seeds and optimizer; only qk-layernorm,
    or only the z-loss, differs.

    Setting history (issue 12): a first-order Markov token stream was tried first (quick
    mode only); it needs no attention, and the LR sensitivities with and without
    qk-layernorm came out equal (ratio 1.00) while the attention logits differed 3300x, so
    it could not test the claim; the noisy copy task replaced it before any full run. One
    exploratory seed at 300 steps then showed, at lr 1e-2 / 1e-1 / 3e-1, final losses 2.05 /
    3.23 / 3.47 without qk-layernorm against 2.04 / 2.06 / 3.46 with it, max attention
    logits 46 / 18588 / 261666 against 9 / 19 / 63, and log Z near its initial 3.6 in every
    run (the z-loss at 1e-4 has not acted within 300 steps). After it, the step count was
    set to 300 and the no-z-loss arm restricted to the top lr (the only lr the old check (c)
    read), for time; no threshold was changed.

    Old setting (vocabulary 32 uniform, batch 32, length 32, biases, float32), result with
    check (c) as above (full, 1000 steps, seeds 0, 100, 200; run after the
    criterion was committed): FAIL (``reproduces=False``) on (c) only. (a) and (b) came out
    bit-identical to the run before the change: ratio of median LR sensitivities
    (qk-layernorm / without) 0.156, gap 0.366 +- 0.15 nats, largest attention logit at lr
    0.3 5.8e4x smaller with qk-layernorm. (c): at qk-layernorm and no weight decay the ratio
    of median LR sensitivities (z-loss / without) is 0.617 (criterion <= 0.5), and the
    per-seed gap 0.013 +- 0.020 nats does not exceed its half-range (per seed, with /
    without: 0.253 / 0.251, 0.031 / 0.031, 0.063 / 0.103 nats). Both sweeps reach 2.02-2.03
    nats (Bayes 2.01) from lr 1e-3 to 1e-1; the only difference is at lr 0.3, median final
    loss 2.03 with the z-loss against 2.31 without, and both are dominated by the
    undertrained lr 3e-4 (2.37), which the two arms share. No output-logit divergence is
    seen: the final mean log Z (medians, from ~3.60 at init) rises to 4.5-4.6 without the
    z-loss at lr >= 1e-3 (4.61 at lr 0.3) and to 4.1-4.5 with it (4.13 at lr 0.3), never
    towards the very negative values of the paper's Fig. 4. So the z-loss removes a small
    loss rise at the top lr but not an LR sensitivity of the size the criterion asks for;
    the instability it mitigates in the paper (late in 1e5 bfloat16 steps) does not appear
    in 1000 float32 steps of this model. Cost: 38 min 17 s user + 15 s system (84 runs, one
    thread each, 2 processes), 70 min 9 s wall on the shared machine (load average 4-8.5 on
    2 cores), so about 20 minutes on 2 idle cores. Nothing was changed after the run. Not
    tried: more steps, bfloat16, the paper's model sizes, C4.

    Old setting, result with the old check (c) (full, 1000 steps, seeds 0, 100, 200; run
    after the step count was committed): reported FAIL (``reproduces=False``) on the old
    z-loss check (c) only. The headline claim now shows: the ratio of median LR
    sensitivities (qk-layernorm / without) is 0.156 (criterion <= 0.5), the per-seed gap
    0.366 +- 0.15 nats exceeds its half-range, and the largest attention logit at lr 0.3 is
    5.8e4x smaller with qk-layernorm (median). But at lr 0.3 |mean log Z| with the z-loss is
    4.19 (criterion < 1) and the drift without it 1.12 (criterion > 2): the output-logit
    part is not seen at this length. Cost: 1141 s user + 11 s system with one thread, 19 min
    13 s wall on an idle machine. Nothing was changed after the run.

    Old setting, earlier result (full, 600 steps, seeds 0, 100, 200): reported FAIL. qk-layernorm
    lowers the LR sensitivity by 0.081 +- 0.018 nats (half-range over seeds, so beyond the
    seed spread) and the largest
    attention logit at lr 0.3 is 3813x smaller with it (median), but the ratio of median
    sensitivities is 0.82, not <= 0.5; the z-loss has still not acted on the output logits
    (|mean log Z| 3.47 with it; drift 0.04 without it). Cost: 12.7 CPU-minutes with one
    thread (754 s user + 7 s system), 37.9 minutes wall on the shared machine (load
    average ~10-12 on 2 cores), so about 13 minutes on an idle core. Nothing was changed
    after the run.

    History (issue 12): the first full run (300 steps, warmup 15; 591 s on the shared
    machine) also FAILed, on the same three checks: sensitivity lower with qk-layernorm by
    0.19 +- 0.04 nats, attention logits at lr 0.3 4232x smaller with it, ratio of median
    sensitivities 0.72; |log Z| 3.59 with the z-loss, drift 0.07 without. At that length
    both arms failed to train at lr 0.3, which the paper's 1e5-step sweep does not show for
    qk-layernorm, so the step count (the axis the paper's warmup 5e3 / 1e5 steps points to)
    was doubled to 600 with everything else, the criterion included, unchanged; 1000 steps
    (~19 CPU-minutes for the 45 runs at 2.8 s of CPU per 100 steps) did not fit the
    session's time on a machine shared by several agents. Doubling the length moved the
    ratio away from the criterion (0.72 -> 0.82), cut the sensitivity gap from 0.19 to 0.08
    nats, and log Z still sat near its initial ~3.6 in every arm: at 600 steps the z-loss at
    1e-4 has not acted, so check (c) cannot be judged at this length, and the direction of
    (a) with length gives no sign that the paper's flat qk-layernorm curve appears in this
    small model before many more steps. The seed-0 runs of the full run, recomputed alone
    after it (same code, deterministic): at lr 0.3 the final loss is 3.45 with qk-layernorm
    and 3.47 without (log 32 = 3.47, the uniform predictor; Bayes loss 2.01), max attention
    logit 55 against 8.0e5 (smallest head entropy 0.22 against 0.00 nats); with qk-layernorm
    at lr 0.1 the loss reaches 2.04. So qk-layernorm removes the attention collapse at lr
    0.3 but the run still does not train at that lr within 600 steps, and that one point
    keeps its sweep's sensitivity high.
    That expectation was wrong for (a): at 1000 steps (the result above) the ratio fell to
    0.156. Not tried: more than 1000 steps, the paper's model sizes, C4.

    Re-check against the paper (issue 12, second pass): its Sec. 2 methodology text gives
    the defaults used here (AdamW betas (0.9, 0.95), eps 1e-8, clipping at global norm 1,
    linear warmup 5e3 of 1e5 steps then cosine decay to 1e-5, independent weight decay 1e-4,
    z-loss 1e-4, pre-LN transformer with qk-layernorm as the default model). A third pass
    (the check (c) change above) read the rest of Sec. 2-3.1 in the ar5iv rendering: Sec.
    2.2 defines the LR sensitivity as :func:`lr_sensitivity` implements it (the mean over
    the 7 lrs of ``min(loss, loss at init) - best loss``). The one scale-down the claim
    plausibly depends on is the step count: with 300 steps the warmup is 15 steps and the
    z-loss has no time to act, against the paper's 5e3-step warmup and 1e5 steps. A
    1000-step full run (warmup 50, criterion unchanged) was started and stopped unfinished:
    one run costs 2.8 s of CPU per 100 steps, so the 45 runs need ~19 CPU-minutes at 1000
    steps, twice the full-mode budget (300 steps: ~6 minutes); a later pass ran 600 steps
    (the result above).

    Quick mode (a regression guard, not the claim): the same code path with lrs 1e-2 and
    1e-1, 30 steps, 64 held-out sequences, one seed, all four arms, run serially; the test
    compares its numbers with the recorded ones (``quick_reference``). The reference was
    re-recorded from that code path when the setting changed (fourth pass: Zipf vocabulary
    512, batch 16, length 24, no biases, bfloat16 autocast; 12 s on the loaded machine);
    bfloat16 matrix products may round differently on a CPU without the same bfloat16
    instructions (this one has AMX and AVX512-BF16), which the guard's tolerance may not
    cover. The largest-attention-logit ratio is checked but not guarded: on the torch 2.6.0
    floor the same quick run gives 120.5 against 58.0 here (a high-lr run in bfloat16 is
    sensitive to the kernels' rounding), while the four LR-sensitivity numbers agree within
    the guard's tolerance (ratio 1.192 against 1.174). Why the claim cannot show in 20
    s (issue 12's quick pass): it is a statistic of the whole 7-lr sweep in two pairs of
    arms over 3 seeds; one run costs ~2.8 s of CPU per 100 steps, so 20 s buys ~700 steps in
    all, while the qk-layernorm ratio did not reach its criterion at 300 or 600 steps per
    run (0.72, 0.82; History).

    Cost of full mode (old setting): 84 runs of 1000 steps, ~2300 CPU-seconds with one
    thread each, run in 2 processes: ~20 minutes wall on 2 idle cores, over the 10-minute
    full-mode budget. New setting, expected before its run: ~10.5 ms of CPU per step, ~12 s
    per run, ~17 CPU-minutes for the 84 runs; measured: 20 CPU-minutes (Result above),
    about 10 minutes on 2 idle cores.

    Deviations: the paper trains models of 9.4M-1.2B parameters on C4 (vocabulary 32k,
    batch 256, length 512) for 1e5 steps with a 5e3-step warmup, truncated-normal init,
    rotary position embeddings, no biases, in bfloat16; here a 0.17M-parameter model with
    torch's default init and learned position embeddings, no biases, bfloat16 autocast
    (float32 weights and optimizer state; the paper's split between bfloat16 and float32
    was not re-read), a synthetic Zipf token stream over 512 tokens, batch 16, length 24
    and 1000 steps, so only the shape of the loss-vs-lr curves can be compared, not the
    paper's loss values. The paper's output-logit divergence appears towards the end of
    1e5 steps; the 1000 steps here are the scale-down check (c) may depend on.
    """

    name = "attention-logit-growth"
    papers = (98,)
    claim = ("In a small transformer, attention-logit growth at high learning rates makes the "
             "final loss sensitive to the learning rate and qk-layernorm keeps the loss flat "
             "across learning rates; without weight decay, the output-logit divergence does "
             "the same and the z-loss removes that sensitivity.")
    paper_figure = ("Fig. 1 (final loss vs learning rate with and without qk-layernorm; LR "
                    "sensitivity, Sec. 2.2) and Fig. 3 with Sec. 3.1.2 (with qk-layernorm and no "
                    "weight decay, final loss vs learning rate with and without the z-loss)")
    scale_downs = ("0.1M-parameter 2-layer transformer instead of 9.4M-1.2B",
                   "synthetic noisy-copy token stream (Zipf vocabulary of 512) instead of C4 "
                   "(32k vocabulary)",
                   "batch 16 x length 24 instead of 256 x 512",
                   "1000 steps instead of 1e5 (warmup 50 instead of 5e3, the same 5%)",
                   "3 seeds",
                   "quick: lrs 1e-2 and 1e-1, 30 steps, one seed (guard)")
    quick_reference = {
        "LR sensitivity, qk-LN / without (ratio of medians over seeds)": 1.1735009431920091,
        "LR sensitivity, without - with qk-LN (nats)": -0.002675294876098633,
        "LR sensitivity, z-loss (no wd) / without (ratio of medians over seeds)":
            1.0083916451833534,
        "LR sensitivity, without - with z-loss (no wd) (nats)": -0.00015211105346679688}
    quick_atol = 1e-3

    LRS = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
    FULL_STEPS = 1000
    FULL_WORKERS = 2  # full mode's budget is 2 cores; results are bit-identical to serial
    # arm -> (qk-layernorm, z-loss, independent weight decay)
    ARMS = {"plain": (False, True, 1e-4), "qk": (True, True, 1e-4),
            "qk-nowd-z": (True, True, 0.0), "qk-nowd": (True, False, 0.0)}

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        lrs = (1e-2, 1e-1) if quick else self.LRS
        steps, n_held = (30, 64) if quick else (self.FULL_STEPS, 256)
        seeds = [seed] if quick else [seed + 100 * i for i in range(3)]
        jobs = {f"{arm}@{lr:g}@{sd}": (lr, steps, sd, qk, z, wd, n_held)
                for sd in seeds for arm, (qk, z, wd) in self.ARMS.items() for lr in lrs}
        return {"lrs": list(lrs), "steps": steps, "seeds": seeds,
                "runs": map_runs(train_run, jobs, processes=1 if quick else self.FULL_WORKERS),
                "best_loss": best_loss(LENGTH, VOCAB, KEEP, EXPONENT)}

    def sensitivity(self, data: dict[str, Any], arm: str) -> list[float]:
        """Per seed: the LR sensitivity of ``arm``'s sweep."""
        out = []
        for sd in data["seeds"]:
            runs = [data["runs"][f"{arm}@{lr:g}@{sd}"] for lr in data["lrs"]]
            out.append(lr_sensitivity([r["loss"] for r in runs], runs[0]["initial"]))
        return out

    def _lowers_sensitivity(self, data: dict[str, Any], without: str, with_: str,
                            what: str) -> list[Check]:
        """The two checks of "``what`` lowers the LR sensitivity": the ratio of medians over
        seeds (with / without) <= 0.5, and the per-seed gap (without - with) beyond its
        half-range over seeds."""
        off, on = self.sensitivity(data, without), self.sensitivity(data, with_)
        ratio = float(np.median(on) / max(np.median(off), 1e-12))
        return [Check(f"LR sensitivity, {what} / without (ratio of medians over seeds)",
                      ratio, "<= 0.5", ratio <= 0.5, seeds=len(on)),
                seed_effect_check(f"LR sensitivity, without - with {what} (nats)",
                                  np.array(off) - np.array(on))]

    def check(self, data: dict[str, Any]) -> list[Check]:
        runs, seeds, top = data["runs"], data["seeds"], f"{data['lrs'][-1]:g}"

        def med(arm: str, key: str) -> float:
            return float(np.median([runs[f"{arm}@{top}@{sd}"][key] for sd in seeds]))

        logit_ratio = med("plain", "logit_max") / med("qk", "logit_max")
        return [
            *self._lowers_sensitivity(data, "plain", "qk", "qk-LN"),
            Check(f"max attention logit, plain / qk-LN at lr {top} (medians)", logit_ratio,
                  "> 5", logit_ratio > 5, seeds=len(seeds)),
            *self._lowers_sensitivity(data, "qk-nowd", "qk-nowd-z", "z-loss (no wd)"),
        ]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        runs, lrs, seeds = data["runs"], data["lrs"], data["seeds"]
        fig, axes = plt.subplots(2, 2, figsize=(8, 6.4))
        panels = ((axes[0, 0], "loss", ("plain", "qk"), ("no qk-LN", "qk-layernorm")),
                  (axes[0, 1], "logit_max", ("plain", "qk"), ("no qk-LN", "qk-layernorm")),
                  (axes[1, 0], "loss", ("qk-nowd", "qk-nowd-z"), ("no z-loss", "z-loss")),
                  (axes[1, 1], "mean_logit", ("qk-nowd", "qk-nowd-z"),
                   ("no z-loss", "z-loss")))
        for ax, key, arms, labels in panels:
            for c, (arm, label) in enumerate(zip(arms, labels, strict=True)):
                for i, sd in enumerate(seeds):
                    ax.plot(lrs, [runs[f"{arm}@{lr:g}@{sd}"][key] for lr in lrs], "o-",
                            color=f"C{c}", alpha=0.7, label=label if i == 0 else None)
            ax.set(xscale="log", xlabel="peak lr")
            ax.legend(fontsize=7)
        for ax in axes[:, 0]:
            ax.axhline(data["best_loss"], color="k", ls="--", lw=0.8)
            ax.set(ylabel="final held-out loss (dashed: Bayes loss)")
        axes[0, 0].set_title("weight decay 1e-4, z-loss", fontsize=8)
        axes[1, 0].set_title("qk-layernorm, no weight decay", fontsize=8)
        axes[0, 1].set(yscale="log", ylabel="max attention logit")
        axes[1, 1].set(ylabel="final mean output logit")
        return fig


PHENOMENA.register("attention-logit-growth", AttentionLogitGrowth, papers=(98,),
                   reproduces=False,
                   summary="qk-layernorm removes the lr sensitivity that attention-logit growth "
                           "causes; without weight decay, z-loss removes that of output-logit "
                           "divergence")
