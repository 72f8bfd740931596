"""The diffusion substrate against diffusers' own schedulers, closed forms and autograd."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.diffusion import (
    GaussianMixture,
    NoiseSchedule,
    ddim_sample,
    ddpm_sample,
    dsm_loss,
    from_diffusers,
    probability_flow_sample,
    ring_mixture,
    signal_mixture,
    unet_denoiser,
    vp_schedule,
)
from trainlab.errors import ConfigError

diffusers = pytest.importorskip("diffusers")


def gaussian(mean: float, std: float, d: int = 2) -> GaussianMixture:
    return GaussianMixture(torch.ones(1), torch.full((1, d), mean),
                           std ** 2 * torch.eye(d)[None])


def test_schedule_errors_are_one_line():
    with pytest.raises(ConfigError, match="must rise strictly") as err:
        NoiseSchedule(torch.tensor([0.9, 0.8, 0.85, 0.5]))
    assert "\n" not in str(err.value) and "t=1->2" in str(err.value)
    with pytest.raises(ConfigError, match="DDPMScheduler") as err:
        from_diffusers(diffusers.EulerDiscreteScheduler())
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="beta_schedule"):
        vp_schedule(10, beta_schedule="cosine")


def test_schedule_matches_diffusers():
    for kind in ("linear", "squaredcos_cap_v2"):
        ref = diffusers.DDPMScheduler(beta_schedule=kind).alphas_cumprod.double()
        ours = vp_schedule(beta_schedule=kind).alphas_cumprod
        assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-8)
    s = vp_schedule()
    ddim = diffusers.DDIMScheduler()
    ddim.set_timesteps(20)
    assert torch.equal(s.inference_timesteps(20), ddim.timesteps)
    t = torch.linspace(-1, 999, 57, dtype=torch.float64)
    assert torch.allclose(s.t_of_kappa(torch.sqrt(1 / s.abar_continuous(t) - 1)), t, atol=1e-9)
    assert torch.allclose(s.abar_continuous(torch.arange(-1, 1000.0)), s.abar(
        torch.arange(-1, 1000)), rtol=1e-12)


def _diffusers_loop(scheduler, eps_fn, x, generator, **step_kw):
    for t in scheduler.timesteps:
        eps = eps_fn(x, torch.full((x.shape[0],), int(t)))
        x = scheduler.step(eps, t, x, generator=generator, **step_kw).prev_sample
    return x


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers(eta):
    mix, sched = ring_mixture(), diffusers.DDIMScheduler(clip_sample=False)
    sched.set_timesteps(25)
    eps_fn = mix.denoiser(from_diffusers(sched))
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    ref = _diffusers_loop(sched, eps_fn, x_T, torch.Generator().manual_seed(1), eta=eta)
    ours = ddim_sample(eps_fn, sched, x_T, num_steps=25, eta=eta,
                       generator=torch.Generator().manual_seed(1))
    assert ours.nfe == 25 and torch.allclose(ours.x0, ref, atol=1e-4)


def test_ddpm_matches_diffusers():
    mix = ring_mixture()
    sched = diffusers.DDPMScheduler(num_train_timesteps=50, beta_end=0.3, clip_sample=False)
    sched.set_timesteps(50)
    eps_fn = mix.denoiser(from_diffusers(sched))
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    ref = _diffusers_loop(sched, eps_fn, x_T, torch.Generator().manual_seed(1))
    ours = ddpm_sample(eps_fn, sched, x_T, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ours.x0, ref, atol=1e-4)


def test_mixture_score_is_grad_log_density():
    mix = signal_mixture(8)
    x = mix.sample(5, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    for scale, var in ((1.0, 0.0 + 1e-3), (0.7, 0.51), (0.1, 0.99)):
        (grad,) = torch.autograd.grad(mix.log_prob(x, scale, var).sum(), x)
        assert torch.allclose(mix.score(x.detach(), scale, var), grad, atol=1e-10)


def test_eps_star_is_conditional_mean_of_the_noise():
    # E||eps||^2 = E||eps*||^2 + E||eps - eps*||^2 (orthogonality of the conditional mean):
    # holds only if eps* = E[eps | x_t].
    mix, sched = ring_mixture(), vp_schedule()
    g = torch.Generator().manual_seed(0)
    n, t = 40000, torch.full((40000,), 300)
    x0, eps = mix.sample(n, generator=g), torch.randn(n, 2, generator=g, dtype=torch.float64)
    a = sched.abar(t)[:, None]
    star = mix.eps_star(a.sqrt() * x0 + (1 - a).sqrt() * eps, sched.abar(t))
    lhs = eps.pow(2).sum(1)
    rhs = star.pow(2).sum(1) + (eps - star).pow(2).sum(1)
    diff = lhs - rhs
    assert abs(diff.mean()) < 4 * diff.std() / math.sqrt(n)
    # and it is not the trivial predictor: it explains a fixed share of the noise
    assert star.pow(2).sum(1).mean() > 0.3


def test_probability_flow_transports_a_gaussian_exactly():
    mix, sched = gaussian(0.5, 0.3), vp_schedule()
    eps_fn = mix.denoiser(sched)
    x_T = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = sched.abar(999)
    exact = 0.5 + 0.3 * (x_T - a.sqrt() * 0.5) / torch.sqrt(a * 0.09 + 1 - a)
    ode = probability_flow_sample(eps_fn, sched, x_T, rtol=1e-9, atol=1e-11)
    assert torch.allclose(ode.x0, exact, atol=1e-6)
    ddim = ddim_sample(eps_fn, sched, x_T, num_steps=1000).x0
    assert (ddim - exact).abs().max() < 5e-3  # Euler of the same ODE, O(1/N)


def test_dsm_loss_at_the_exact_denoiser():
    mix, sched = ring_mixture(), vp_schedule()
    g = torch.Generator().manual_seed(0)
    x0 = mix.sample(20000, generator=g)
    exact = dsm_loss(mix.denoiser(sched), x0, sched, generator=torch.Generator().manual_seed(1))
    zero = dsm_loss(lambda x, t: torch.zeros_like(x), x0, sched,
                    generator=torch.Generator().manual_seed(1))
    assert abs(zero.item() - 2.0) < 0.05  # E||eps||^2 = d
    assert exact.item() < zero.item() - 0.1


def test_edm_view_of_a_vp_model_is_the_exact_edm_denoiser():
    from trainlab.diffusion.samplers import edm_denoiser

    mix, sched = ring_mixture(), vp_schedule()
    d = edm_denoiser(mix.denoiser(sched), sched)
    x = 3 * torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for sigma in (0.002, 0.5, 7.0, 80.0):
        assert torch.allclose(d(x, sigma), mix.edm_denoiser(x, sigma), atol=1e-9)


def test_tiny_unet2d_through_our_samplers_matches_diffusers():
    from trainlab.diffusion.cao2024_deq_sampling import deq_ddim_sample
    from trainlab.diffusion.samplers import edm_denoiser
    from trainlab.diffusion.zheng2024_enkg import enkg_sample

    with torch.random.fork_rng():
        torch.manual_seed(0)
        unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1,
                                     layers_per_block=1, block_out_channels=(8, 16),
                                     down_block_types=("DownBlock2D", "DownBlock2D"),
                                     up_block_types=("UpBlock2D", "UpBlock2D"),
                                     norm_num_groups=4).eval()
    sched = diffusers.DDIMScheduler(clip_sample=False)
    sched.set_timesteps(5)
    eps_fn = unet_denoiser(unet)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = _diffusers_loop(sched, eps_fn, x_T, None)
        ours = ddim_sample(eps_fn, sched, x_T, num_steps=5)
        deq = deq_ddim_sample(eps_fn, sched, x_T, num_steps=5, tol=1e-6)
        guided = enkg_sample(edm_denoiser(eps_fn, sched), lambda x: x.mean((1, 2, 3))[:, None],
                             torch.zeros(1), 2 * x_T.repeat(4, 1, 1, 1), num_steps=6,
                             sigma_max=2.0)
    assert ours.x0.shape == x_T.shape and torch.allclose(ours.x0, ref, atol=1e-4)
    assert torch.allclose(deq.x[-1], ref, atol=1e-4)
    assert guided.forward_calls > 0 and torch.isfinite(guided.x0).all()


def test_diffusion_training_runs_through_the_trainer(tmp_path):
    from trainlab.store import RunStore
    from trainlab.train import RunConfig, Trainer

    cfg = RunConfig(task="diffusion-mixture", task_params={"n_train": 256, "n_test": 256},
                    model_params={"width": 32}, steps=60, batch_size=64, every=20, lr=3e-3,
                    schedule_params={"warmup": 5}, probes="standard")
    store = RunStore(tmp_path)
    result = Trainer(cfg, store=store, report=False).run()
    m = store.metrics(result.run_id)
    assert result.status == "completed"
    test = m["test/loss"][1]
    assert test[-1] < test[0]  # the exact score error falls


def test_mixture_task_test_labels_are_the_exact_noise_prediction():
    from trainlab.tasks import build_task

    task = build_task("diffusion-mixture", n_train=8, n_test=16)
    mix, sched = task.info["mixture"], task.info["schedule"]
    x = task.x_test.double()
    s = x[:, 2]  # first time feature = (t + 1) / T
    t = torch.round(s * sched.num_steps - 1).long()
    assert torch.allclose(task.y_test.double(), mix.eps_star(x[:, :2], sched.abar(t)), atol=1e-5)


def test_digits_task_shapes_and_noise_labels():
    from trainlab.tasks import build_task

    task = build_task("diffusion-digits", n_test=100)
    assert task.x_train.shape == (1697, 69) and task.y_train.shape == (1697, 64)
    assert task.x_test.shape == (100, 69)
    assert abs(task.y_train.double().pow(2).mean().item() - 1.0) < 0.05  # labels are N(0, I)
    assert task.x_train[:, :64].abs().max() < 6  # noised images of [-1, 1] pixels
