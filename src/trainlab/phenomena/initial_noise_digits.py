"""The initial noise decides what a (weakly guided) diffusion model generates: optimising the
noise itself (InitNO, Guo et al., CVPR 2024; papers.md row 107) or its distribution by policy
optimisation (FIND, Chen et al., ACM MM 2024; papers.md row 61) raises the rate of samples
that match the prompt, with the model frozen."""

from __future__ import annotations

from typing import Any

import torch

from trainlab.diffusion.chen2024_find import find
from trainlab.diffusion.digits_denoiser import TrainedDigitsModel, trained_digits_model
from trainlab.diffusion.guo2024_initno import alignment_score, initno
from trainlab.diffusion.samplers import ddim_sample
from trainlab.phenomena._base import PHENOMENA, Check, Phenomenon, seed_effect_check

DIGIT, WEIGHT, STEPS = 3, 0.3, 50
MODEL_STEPS, MODEL_STEPS_QUICK = 6000, 1000  # training steps of the frozen digits model


def success_rate(model: TrainedDigitsModel, noise: torch.Tensor, *, eta: float = 0.0,
                 generator: torch.Generator | None = None) -> float:
    """Share of 50-step DDIM samples from ``noise`` the classifier reads as DIGIT."""
    x = ddim_sample(model.guided_denoiser(DIGIT, WEIGHT), model.schedule, noise,
                    num_steps=STEPS, eta=eta, generator=generator).x0
    return (model.predicted(x) == DIGIT).double().mean().item()


_SETUP = """The "model" is a class-conditional MLP denoiser trained on scikit-learn's digits
    (:mod:`trainlab.diffusion.digits_denoiser`: 6000 Adam steps from seed 0, about 45 s
    idle; quick: 1000 steps), frozen, the small stand-in for the papers' pretrained Stable
    Diffusion. It is prompted with digit 3 by classifier-free guidance at the weak weight 0.3
    (so that, as with Stable Diffusion on hard prompts, many noises give the wrong content)
    and sampled by 50-step DDIM (the papers' step count); success = the linear discriminant
    classifier reads the sample as a 3."""


def _seeds(quick: bool, seed: int) -> list[int]:
    return [seed] if quick else [seed, seed + 1, seed + 2]


class InitNODigits(Phenomenon):
    __doc__ = f"""InitNO on 200 noises per seed (quick: 50), seeds 0, 1, 2 (quick: seed 0).
    {_SETUP} InitNO at the paper's released defaults (Adam lr 1e-2, eps 1e-3, 5 rounds x 10
    steps, then 50 from the best round's noise, KL alignment to <= 1e-3, validity threshold
    0.2) on the first-step score 1 - p(3 | Tweedie x0).

    Criterion (the paper's claim that optimising invalid initial noises into the valid
    region makes the generated images consistent with the prompt; its tables could not be
    read here; written before the run): per seed d = success with InitNO - success from the
    same number of fresh N(0, I) noises; PASS iff mean(d) exceeds its seed half-range (quick:
    d > 0); and the optimised noise distributions satisfy the paper's alignment constraint
    KL(N(mu, sigma^2) || N(0, I)) <= 1e-3 (largest over rounds and seeds). An earlier version
    required d >= 0.2, a threshold chosen after exploration.

    History: the first full run under this criterion used the exact-score Gaussian prior of
    :mod:`trainlab.diffusion.digits_prior` (a perfectly trained model) and a KL alignment
    capped at 100 Adam steps with its own optimiser and a batch-mean KL; it FAILED the KL
    check (0.0033 > 1e-3; gain 0.483 +- 0.020). The alignment loop was then moved to the
    authors' code (the same Adam optimiser, per sample, until KL <= 1e-3): PASS on the exact
    prior, d = 0.42 +- 0.028, largest KL 0.00099. The model was then moved to a trained
    network (the papers' setting is a trained model); the criterion is unchanged.

    Result (full, 3 seeds, trained model): PASS. d = 0.247 +- 0.018; largest row KL
    0.000999. 272 s on the loaded machine (load ~15; 71 s CPU, of which the model's training
    is most), about 70 s idle. Quick (1000-step model, 50 noises, 1 seed): d = 0.18, KL
    0.00098, PASS.

    Deviations from the paper: a scale-down: a class-conditional MLP denoiser on scikit-learn's 8x8
    digits stands in for Stable Diffusion, and the score being optimised is 1 - p(3 | Tweedie x0)
    from a linear discriminant instead of the paper's attention-based scores; InitNO's optimiser
    settings are the released defaults (above); the criterion is this library's.
    """

    name = "initno-digits"
    papers = (107,)
    claim = ("Optimising the initial noise against an alignment score computed at the first "
             "denoising step, while keeping it close to N(0, I), turns noises that yield "
             "prompt-inconsistent images into ones that yield the prompt.")
    paper_figure = ("the abstract's and Sec. 3's claim (optimised initial noise turns "
                    "prompt-inconsistent samples into consistent ones); defaults from the "
                    "authors' released pipeline; the tables could not be read here")
    scale_downs = ("a class-conditional MLP denoiser trained on scikit-learn digits instead "
                   "of Stable Diffusion",
                   "a digit prompt by weak classifier-free guidance instead of text",
                   "a classifier on the first-step prediction instead of cross-attention",
                   "200 noises x 3 seeds (quick: 50 x 1)")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        model = trained_digits_model(MODEL_STEPS_QUICK if quick else MODEL_STEPS)
        n = 50 if quick else 200
        rows = []
        for s in _seeds(quick, seed):
            g = torch.Generator().manual_seed(s)
            base = torch.randn(n, 64, generator=g, dtype=torch.float64)
            res = initno(alignment_score(model, DIGIT, WEIGHT, STEPS), (64,), n, generator=g)
            rows.append({"without": success_rate(model, base),
                         "with": success_rate(model, res.noise), "kl": res.kl,
                         "valid": res.valid.double().mean().item(),
                         "min_score": res.score.min().item()})
        return {"rows": rows}

    def check(self, data: dict[str, Any]) -> list[Check]:
        rows = data["rows"]
        kl = max(r["kl"] for r in rows)
        return [
            seed_effect_check("success with InitNO - without",
                              [r["with"] - r["without"] for r in rows]),
            Check("largest KL of the optimised noise distribution", kl, "<= 1e-3 (the paper's "
                  "alignment threshold)", kl <= 1e-3, seeds=len(rows)),
        ]


class FINDDigits(Phenomenon):
    __doc__ = f"""FIND: {_SETUP} The policy N(mu, sigma^2) over the 64-dim initial noise is
    trained at the authors' released settings: rollouts by DDIM with eta = 1, reward
    log p(3 | x), policy Adam lr 1e-3, gradient-norm clip 0.1, ratio clip 0.2 against
    N(0, I), w_r = 10, w_kl = 0.01, reward calibration by a value net (AdamW lr 1e-4, 5 steps
    per iteration), 150 iterations (quick: 80) of 16 rollouts (the code: 1 rollout). Success
    is measured on 400 fresh draws, sampled like the rollouts (eta = 1). Seeds 0, 1, 2
    (quick: seed 0).

    Criterion (the paper's claim that fine-tuning the initial distribution raises prompt
    consistency of the frozen model; its tables could not be read here; written before the
    run): per seed d = success from the trained policy - success from N(0, I); PASS iff
    mean(d) exceeds its seed half-range (quick: d > 0). An earlier version ran at eta = 0 and
    lr 1e-2 (not the paper's) with a threshold d >= 0.3 chosen after exploration.

    History: the first full run under this criterion, on the exact-score Gaussian prior
    (:mod:`trainlab.diffusion.digits_prior`), FAILED: d = 0.035 +- 0.039 (success without /
    with, per seed: 0.370 / 0.440, 0.410 / 0.403, 0.323 / 0.365); 150 iterations of lr 1e-3
    barely moved the policy (mean |mu| 0.011, mean sigma 1.002). Earlier versions (20 DDIM
    steps, exact prior) recorded: eta = 1 at any step size, 0.35 -> 0.37-0.44 after 100-150
    iterations; eta = 0 at lr 1e-3, 0.32 -> 0.41 after 150; eta = 0 at lr 1e-2 (not the
    paper's), 0.29 -> 0.81 after 80. The model was then moved to a trained network (the
    paper's setting is a trained model); the criterion is unchanged.

    Result (full, 3 seeds, trained model): PASS, narrowly: d = 0.062 +- 0.026 (the effect 2.4
    times its seed half-range; success without / with, per seed: 0.335 / 0.408, 0.318 / 0.400,
    0.343 / 0.373; the policy moved little: mean |mu| 0.011, mean sigma 1.002). 461 s on the
    loaded machine (load ~15; 96 s CPU), about 95 s idle. With the exact prior above, the same
    settings FAILED: the verdict depends on the model, and the switch of model was made after
    that FAIL was seen (to follow the papers' trained-model setting, not chosen among models by
    outcome: two training recipes were compared on sample quality alone, before any InitNO or
    FIND run on them; the first, 4000 steps with 5 time features, gave samples far outside the
    data range). The quick run (1000-step model, 80 iterations, d = -0.0475) is a regression
    guard (``quick_reference``), not a test of the claim.

    Deviations from the paper: a scale-down: a class-conditional MLP denoiser on scikit-learn's 8x8
    digits stands in for Stable Diffusion, with a linear discriminant as the prompt-consistency
    judge; the policy settings are the authors' released ones (above), with 16 rollouts per
    iteration where the code uses 1; the criterion is this library's.
    """

    name = "find-digits"
    quick_reference = {"success with FIND policy - with N(0, I)": -0.0475}
    quick_atol = 0.003  # one sample in 400
    papers = (61,)
    claim = ("Fine-tuning only the initial-noise distribution by policy optimisation, kept "
             "close to the original Gaussian, raises the reward (prompt consistency) of a "
             "frozen diffusion model.")
    paper_figure = ("the abstract's and Sec. 3's claim (policy optimisation of the "
                    "initial-noise distribution raises prompt consistency); settings from the "
                    "authors' released training script; the tables could not be read here")
    scale_downs = ("a class-conditional MLP denoiser trained on scikit-learn digits instead "
                   "of Stable Diffusion",
                   "a digit prompt by weak classifier-free guidance instead of text",
                   "150 policy iterations x 3 seeds (quick: 80 x 1)")

    def run(self, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
        model = trained_digits_model(MODEL_STEPS_QUICK if quick else MODEL_STEPS)
        eps = model.guided_denoiser(DIGIT, WEIGHT)

        def reward(z: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
            x = ddim_sample(eps, model.schedule, z, num_steps=STEPS, eta=1.0,
                            generator=gen).x0
            return model.log_prob_digit(x, DIGIT)

        rows = []
        for s in _seeds(quick, seed):
            g = torch.Generator().manual_seed(s)
            res = find(reward, (64,), iterations=80 if quick else 150, batch=16, lr=1e-3,
                       value_lr=1e-4, grad_clip=0.1, generator=g)
            pol = res.policy
            base = torch.randn(400, 64, generator=g, dtype=torch.float64)
            rows.append({"without": success_rate(model, base, eta=1.0, generator=g),
                         "with": success_rate(model, pol.sample(400, generator=g), eta=1.0,
                                              generator=g),
                         "rewards": res.rewards, "mu": pol.mu.abs().mean().item(),
                         "sigma": pol.std.mean().item()})
        return {"rows": rows, "rewards": rows[0]["rewards"]}

    def check(self, data: dict[str, Any]) -> list[Check]:
        return [seed_effect_check("success with FIND policy - with N(0, I)",
                                  [r["with"] - r["without"] for r in data["rows"]])]

    def plot(self, data: dict[str, Any]) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.8, 3.2))
        ax.plot(data["rewards"])
        ax.set(xlabel="iteration", ylabel="mean reward log p(3 | x)")
        return fig


PHENOMENA.register("initno-digits", InitNODigits, papers=(107,), reproduces=True,
                   summary="initial-noise optimization raises the prompt success rate of a "
                           "weakly guided digits model")
PHENOMENA.register("find-digits", FINDDigits, papers=(61,), reproduces=True,
                   summary="policy optimization of the initial-noise distribution raises the "
                           "reward of a frozen digits model")
