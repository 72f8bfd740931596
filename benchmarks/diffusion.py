"""Cost of the diffusion methods: serial vs DEQ-parallel DDIM sampling (row 49) and EnKG vs
DPS guidance (row 106).

Sampler: the exact-score denoisers of :mod:`trainlab.diffusion.mixtures` (2-D ring, 8
components; 1-D signals of length 32) and, optionally, a tiny random ``diffusers``
``UNet2DModel`` on 8x8 images; DDIM eta = 0, linear VP schedule T = 1000. For each number of
steps N: the serial chain's N sequential calls and its wall time, against the DEQ solve
(Anderson, tolerance 1e-6): its sequential (parallel) calls, total network evaluations
(calls x N), wall time, and the largest difference to the serial result. The DEQ solve does
more total work; its saving is sequential depth, which pays off in wall time only where the
N evaluations of one call run in parallel at little extra cost (multi-GPU in the paper; on
one CPU core the batched tiny UNet already gains, the cheap mixture oracles do not).

Guidance: the 1-D signal prior and the viscous-Burgers black box of the ``enkg-black-box``
phenomenon (x* a prior draw, seed 0), J = 256 particles: sequential black-box calls, denoiser
calls, gradient use, wall time and the mean relative L2 error of the particles.

Example:
    PYTHONPATH=src python benchmarks/diffusion.py --steps 25 50 100
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from trainlab.diffusion import ring_mixture, signal_mixture, unet_denoiser, vp_schedule
from trainlab.diffusion.cao2024_deq_sampling import (
    chain_coefficients,
    deq_ddim_sample,
    serial_chain,
)
from trainlab.diffusion.zheng2024_enkg import black_box, dps_sample, enkg_sample
from trainlab.phenomena.zheng2024_enkg import burgers_observation


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def sampler_rows(steps: list[int], unet: bool) -> list[dict]:
    sched = vp_schedule()
    g = torch.Generator().manual_seed(0)
    cases = {"ring-2d": (ring_mixture().denoiser(sched), torch.randn(64, 2, generator=g,
                                                                      dtype=torch.float64)),
             "signals-32": (signal_mixture(32).denoiser(sched),
                            torch.randn(16, 32, generator=g, dtype=torch.float64))}
    if unet:
        from diffusers import UNet2DModel

        with torch.random.fork_rng():
            torch.manual_seed(0)
            net = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                              block_out_channels=(8, 16), norm_num_groups=4,
                              down_block_types=("DownBlock2D", "DownBlock2D"),
                              up_block_types=("UpBlock2D", "UpBlock2D")).eval()
        cases["unet-8x8 (random)"] = (unet_denoiser(net), torch.randn(4, 1, 8, 8, generator=g))
    rows = []
    for name, (eps, x_T) in cases.items():
        for n in steps:
            with torch.no_grad():
                ref, t_serial = _timed(serial_chain, eps, chain_coefficients(sched, n), x_T)
                deq, t_deq = _timed(deq_ddim_sample, eps, sched, x_T, num_steps=n, tol=1e-6)
            rows.append({"data": name, "N": n, "serial_sequential_calls": n,
                         "serial_s": round(t_serial, 4),
                         "deq_sequential_calls": deq.iterations,
                         "deq_total_evals": deq.iterations * n, "deq_s": round(t_deq, 4),
                         "deq_converged": deq.converged,
                         "max_abs_diff": float((deq.x[-1] - ref[-1]).abs().max())})
    return rows


def guidance_rows(steps: list[int]) -> list[dict]:
    mix = signal_mixture(32)
    g = torch.Generator().manual_seed(0)
    x_star = mix.sample(1, generator=g)
    forward = black_box(lambda u: burgers_observation(torch.from_numpy(u)).numpy())
    y = forward(x_star)[0]
    x_init = 80 * torch.randn(256, 32, generator=g, dtype=torch.float64)
    rows = []
    for n in steps:
        with torch.no_grad():
            enkg, t_e = _timed(enkg_sample, mix.edm_denoiser, forward, y, x_init, num_steps=n)
        dps, t_d = _timed(dps_sample, mix.edm_denoiser, burgers_observation, y, x_init,
                          num_steps=n, step_size=0.1)
        for name, out, sec in (("EnKG", enkg, t_e), ("DPS (step 0.1)", dps, t_d)):
            rows.append({"method": name, "N": n, "forward_calls": out.forward_calls,
                         "denoiser_calls": out.denoiser_calls,
                         "gradients": out.uses_gradients, "seconds": round(sec, 3),
                         "rel_l2_error": float(((out.x0 - x_star).norm(dim=1)
                                                / x_star.norm()).mean())})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--guidance-steps", type=int, nargs="+", default=[40, 80])
    parser.add_argument("--unet", action="store_true", help="also a tiny random UNet2DModel")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    samp, guid = sampler_rows(args.steps, args.unet), guidance_rows(args.guidance_steps)
    if args.json:
        print(json.dumps({"sampler": samp, "guidance": guid}, indent=1))
        return
    print("sampler: serial DDIM vs DEQ (Anderson, tol 1e-6)")
    for r in samp:
        print(f"  {r['data']:18s} N={r['N']:4d}  serial {r['serial_sequential_calls']:4d} calls "
              f"{r['serial_s']:7.3f}s | DEQ {r['deq_sequential_calls']:3d} sequential calls "
              f"({r['deq_total_evals']:5d} evals) {r['deq_s']:7.3f}s  "
              f"max|diff| {r['max_abs_diff']:.1e}  converged={r['deq_converged']}")
    print("guidance: EnKG vs DPS, J = 256")
    for r in guid:
        print(f"  {r['method']:16s} N={r['N']:3d}  G calls {r['forward_calls']:4d}  "
              f"denoiser calls {r['denoiser_calls']:5d}  gradients={r['gradients']!s:5s}  "
              f"{r['seconds']:6.2f}s  rel. L2 error {r['rel_l2_error']:.3f}")


if __name__ == "__main__":
    main()
