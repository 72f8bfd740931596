"""In-loop sharpness: Hessian-vector products per warm-started measurement, and how many
a 1e-3 relative error needs.

Trains the default MLP on MNIST-1D (AdamW, lr 3e-3, batch 128, 1 thread) and measures the
top Hessian eigenvalue of each measured step's batch every ``--every`` steps:

* the :class:`~trainlab.probes.Sharpness` probe as it runs in a loop (warm-started from the
  previous measurement's Ritz vector, its default ``tol``): products, converged flag, and its
  relative error against a cold, tightly converged Lanczos reference (``tol=1e-7``);
* the oracle count: the smallest Krylov size whose top Ritz value, from the previous
  measurement's converged eigenvector, is within ``--target`` of the reference (the fewest
  products any Lanczos stopping rule could use from that warm start), and the same from a
  random start;
* ``|cos|`` between the previous measurement's top eigenvector and the current one: how far
  the eigenvector moved (a warm start only helps when this is close to 1).

``--fixed-batch`` measures every time on one batch of 128 training examples drawn once
(the papers' fixed subset) instead of the step's batch: it shows how much of the
eigenvector's movement between measurements comes from the batch changing.

Prints one row per measurement and the medians. Usage:
    python benchmarks/sharpness_warm.py [--steps 300] [--every 50] [--threads 1]
                                        [--fixed-batch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch

from trainlab.curvature import lanczos
from trainlab.curvature.training_hessian import training_hessian
from trainlab.init import apply as apply_init
from trainlab.models import build_model
from trainlab.probes import ProbeContext
from trainlab.probes.sharpness import Sharpness
from trainlab.tasks import build_task


def oracle_count(op, v0: torch.Tensor | None, lam: float, target: float, cap: int,
                 seed: int) -> int | None:
    """Fewest products whose top Ritz value is within ``target`` (relative) of ``lam``."""
    for m in range(1, cap + 1):
        r = lanczos(op, k=1, tol=1e-12, max_iter=m, v0=v0,
                    generator=torch.Generator().manual_seed(seed))
        if abs(r.values[0].item() - lam) <= target * abs(lam):
            return m
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--target", type=float, default=1e-3)
    ap.add_argument("--cap", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eig-tol", type=float, default=None,
                    help="the probe's eig_tol (default: off, the probe's default)")
    ap.add_argument("--tol", type=float, default=None, help="the probe's tol (default: its own)")
    ap.add_argument("--min-iter", type=int, default=None, help="the probe's min_iter")
    ap.add_argument("--gap-tol", type=float, default=None, help="the probe's gap_tol")
    ap.add_argument("--fixed-batch", action="store_true",
                    help="measure on one fixed batch of 128 examples, not the step's batch")
    ap.add_argument("--out", default="benchmarks/results/sharpness_warm.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = build_task("mnist1d")
    model = build_model("mlp", tuple(task.x_train.shape[1:]), task.num_outputs)
    apply_init(model, "orthogonal", generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    draws = torch.Generator().manual_seed(1)
    fixed = torch.randperm(len(task.x_train), generator=torch.Generator().manual_seed(7))[:128]
    probe, prev, rows = Sharpness(every=args.every, eig_tol=args.eig_tol, **{
        k: v for k, v in (("tol", args.tol), ("min_iter", args.min_iter),
                          ("gap_tol", args.gap_tol)) if v is not None}), None, []
    print(f"steps={args.steps} every={args.every} target={args.target:g} "
          f"eig_tol={args.eig_tol} fixed_batch={args.fixed_batch} "
          f"torch={torch.__version__} load={os.getloadavg()[0]:.1f}")
    print("step  probe_hvps converged probe_err  oracle_warm oracle_cold  |cos|")
    for step in range(args.steps + 1):
        idx = torch.randint(0, len(task.x_train), (128,), generator=draws)
        x, y = task.x_train[idx], task.y_train[idx]
        opt.zero_grad()
        loss = task.loss(model(x), y)
        loss.backward()
        if step % args.every == 0:
            if args.fixed_batch:
                x, y = task.x_train[fixed], task.y_train[fixed]
            ctx = ProbeContext(step=step, model=model, loss_fn=task.loss, batch=(x, y),
                               loss=loss.detach(), optimizer=opt, lr=3e-3, init_params={},
                               prev_params=None, generator=torch.Generator().manual_seed(step))
            out = probe.measure(ctx)
            op = training_hessian(model, task.loss, (x, y))
            ref = lanczos(op, k=1, tol=1e-7, max_iter=min(200, op.dim),
                          generator=torch.Generator().manual_seed(99))
            lam, vec = ref.values[0].item(), ref.vectors[:, 0]
            val = out.get("sharpness", out.get("sharpness_unconverged"))
            row = {"step": step, "probe_hvps": int(out["sharpness_matvecs"]),
                   "converged": bool(out["sharpness_converged"]),
                   "probe_rel_err": abs(val - lam) / abs(lam),
                   "oracle_cold": oracle_count(op, None, lam, args.target, args.cap, step)}
            if prev is not None:
                row["oracle_warm"] = oracle_count(op, prev, lam, args.target, args.cap, step)
                row["cos"] = abs(torch.dot(prev, vec).item())
                rows.append(row)
            print(f"{step:5d} {row['probe_hvps']:6d} {row['converged']!s:>9} "
                  f"{row['probe_rel_err']:9.1e} {row.get('oracle_warm')!s:>9} "
                  f"{row['oracle_cold']!s:>11} {row.get('cos', float('nan')):8.3f}")
            prev = vec.clone()
        opt.step()

    def med(key: str) -> float:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return statistics.median(vals) if vals else float("nan")

    summary = {"probe_hvps_median": med("probe_hvps"), "probe_rel_err_max":
               max(r["probe_rel_err"] for r in rows), "oracle_warm_median": med("oracle_warm"),
               "oracle_cold_median": med("oracle_cold"), "cos_median": med("cos"),
               "share_within_5": sum(1 for r in rows if (r["oracle_warm"] or 99) <= 5)
               / len(rows)}
    print(f"  warm-started probe: median {summary['probe_hvps_median']:g} HVPs per measurement"
          f" (target <= 5), max relative error {summary['probe_rel_err_max']:.1e}")
    print(f"  oracle to {args.target:g}: warm {summary['oracle_warm_median']:g}, cold "
          f"{summary['oracle_cold_median']:g} HVPs; warm <= 5 in "
          f"{100 * summary['share_within_5']:.0f}% of measurements; median |cos| between "
          f"successive top eigenvectors {summary['cos_median']:.2f}")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": rows, "summary": summary, "every": args.every,
                                "fixed_batch": args.fixed_batch,
                                "torch": torch.__version__}, indent=1))


if __name__ == "__main__":
    main()
