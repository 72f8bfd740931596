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

``--subspace B`` (B >= 1) asks whether a *block* warm start, from the previous measurement's
top-b eigenvectors (b = 1..B, from the tight reference, i.e. the best such start), could do
better. Per measurement and block size b it prints:

* ``in{b}``: the squared norm of the new top eigenvector's projection onto the previous top-b
  span, in [0, 1] (1: the new top eigenvector lies in the old span);
* ``rr{b}``: the oracle count of a Rayleigh-Ritz expansion from that span (the b start
  vectors, then one product per step on the residual of the current top Ritz pair, the
  cheapest block method per product: :func:`block_start_history`), the b start products
  included; for b = 1 its Krylov space is Lanczos's, so ``rr1`` equals ``oracle_warm`` up to
  rounding (a check of the two counts);
* ``lobpcg{b}``: the same count for ``scipy.sparse.linalg.lobpcg`` (Knyazev 2001) from the
  same block: b products per iteration, so its counts are multiples of b.

``--method block-warm [--block 2]`` also runs ``Sharpness(method="block-warm")`` beside the
default probe, on the same batches, each probe with its own Hessian operator and run cache
as in a run: columns ``alt_hvps`` (products), ``alt_conv`` (converged flag), ``alt_err``
(relative error against the tight reference) and ``alt_est`` (its recorded
``sharpness_error_estimate``), and the process time of each probe's measurement (medians in
the summary). The probe options (``--tol``, ``--eig-tol``, ...) apply to both.
``--no-oracle`` skips the oracle counts (the slow columns).

Prints one row per measurement and the medians. Usage:
    python benchmarks/sharpness_warm.py [--steps 300] [--every 50] [--threads 1]
                                        [--fixed-batch] [--subspace 4]
                                        [--method block-warm] [--no-oracle]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse.linalg as spla
import torch

from trainlab.curvature import lanczos
from trainlab.curvature.solvers import ritz_expansion
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


def block_start_history(op, start: torch.Tensor, cap: int) -> list[float]:
    r"""Top Ritz value after each of ``cap`` products (a list of ``cap`` values, fewer if the
    space becomes invariant) of :func:`~trainlab.curvature.solvers.ritz_expansion`:
    Rayleigh-Ritz on the span of ``start``'s columns, one product per column, then one
    product per step on the residual :math:`Hy - \theta y` of the current top Ritz pair
    :math:`(\theta, y)` (Davidson's expansion with no preconditioner). Each new direction
    lies in the block Krylov space of ``start``; from one vector the space is the Lanczos
    space of that vector."""
    return [float(step.values[0]) for step in ritz_expansion(op, start, cap)]


def lobpcg_history(op, start: torch.Tensor, cap: int) -> list[tuple[int, float]]:
    """``(products, top value)`` after LOBPCG's initial Rayleigh-Ritz on ``start`` and after
    each iteration (``scipy.sparse.linalg.lobpcg``, ``largest=True``, tolerance 0 so it runs
    ``cap // b - 1`` iterations, at least one; scipy's ``maxiter`` counts one fewer): b
    products each. Scipy's closing Rayleigh-Ritz (b more products, the same value) is not
    counted."""
    b = start.shape[1]
    iters = max(cap // b - 2, 0)
    with warnings.catch_warnings():  # stopped by maxiter on purpose: no accuracy asked
        warnings.simplefilter("ignore")
        _, _, hist = spla.lobpcg(op.to_scipy(), start.detach().cpu().numpy().astype(
            np.float64), largest=True, tol=1e-30, maxiter=iters, retLambdaHistory=True)
    return [(b * (j + 1), float(np.max(h))) for j, h in enumerate(hist[:-1])]


def first_within(counts_values, lam: float, target: float) -> int | None:
    """The first product count whose value is within ``target`` (relative) of ``lam``."""
    for m, value in counts_values:
        if abs(value - lam) <= target * abs(lam):
            return m
    return None


def block_columns(op, prev_block: torch.Tensor, vec: torch.Tensor, lam: float,
                  args: argparse.Namespace) -> dict[str, float | int | None]:
    """The ``--subspace`` columns of one measurement (see the module docstring)."""
    out: dict[str, float | int | None] = {}
    for b in range(1, args.subspace + 1):
        start = prev_block[:, :b]
        out[f"in{b}"] = round((start.T @ vec).pow(2).sum().item(), 3)
        history = block_start_history(op, start, args.cap)
        out[f"rr{b}"] = first_within(enumerate(history, 1), lam, args.target)
        out[f"lobpcg{b}"] = first_within(lobpcg_history(op, start, args.cap), lam, args.target)
    return out


def block_summary(rows: list[dict], blocks: int) -> dict[int, dict[str, float]]:
    """Medians and maxima of the ``--subspace`` columns; a count not reached within ``--cap``
    products counts as infinite (so it raises a median instead of dropping out of it)."""
    def counts(key: str) -> list[float]:
        return [float("inf") if r[key] is None else r[key] for r in rows]

    return {b: {"in_median": statistics.median(r[f"in{b}"] for r in rows),
                "rr_median": statistics.median(counts(f"rr{b}")),
                "rr_max": max(counts(f"rr{b}")),
                "lobpcg_median": statistics.median(counts(f"lobpcg{b}")),
                "lobpcg_max": max(counts(f"lobpcg{b}"))} for b in range(1, blocks + 1)}


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
    ap.add_argument("--method", default="lanczos", choices=("lanczos", "block-warm"),
                    help="with block-warm, also run Sharpness(method='block-warm') beside the "
                         "default probe, on the same batches (columns alt_*)")
    ap.add_argument("--block", type=int, default=None, help="the block-warm probe's block")
    ap.add_argument("--no-oracle", action="store_true",
                    help="skip the oracle counts (the slow columns)")
    ap.add_argument("--subspace", type=int, default=0,
                    help="largest block b of the block warm-start columns (default 0: off)")
    ap.add_argument("--out", default="benchmarks/results/sharpness_warm.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = build_task("mnist1d")
    model = build_model("mlp", tuple(task.x_train.shape[1:]), task.num_outputs)
    apply_init(model, "orthogonal", generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    draws = torch.Generator().manual_seed(1)
    fixed = torch.randperm(len(task.x_train), generator=torch.Generator().manual_seed(7))[:128]
    options = {k: v for k, v in (("tol", args.tol), ("min_iter", args.min_iter),
                                 ("gap_tol", args.gap_tol)) if v is not None}
    probe, prev, rows = Sharpness(every=args.every, eig_tol=args.eig_tol, **options), None, []
    alt = None if args.method == "lanczos" else Sharpness(
        every=args.every, eig_tol=args.eig_tol, method=args.method, block=args.block, **options)
    caches: dict[str, dict] = {"probe": {}, "alt": {}}  # each probe's run_cache, as in a run
    print(f"steps={args.steps} every={args.every} target={args.target:g} "
          f"eig_tol={args.eig_tol} fixed_batch={args.fixed_batch} "
          f"torch={torch.__version__} load={os.getloadavg()[0]:.1f}")
    block_keys = [f"{name}{b}" for name in ("in", "rr", "lobpcg")
                  for b in range(1, args.subspace + 1)]
    alt_keys = [] if alt is None else ["alt_hvps", "alt_conv", "alt_err", "alt_est"]
    print("step  probe_hvps converged probe_err  oracle_warm oracle_cold  |cos|"
          + "".join(f" {k:>7}" for k in block_keys + alt_keys))
    prev_block = None
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
                               prev_params=None, run_cache=caches["probe"],
                               generator=torch.Generator().manual_seed(step))
            t0 = time.process_time()
            out = probe.measure(ctx)
            probe_ms = 1e3 * (time.process_time() - t0)
            if alt is not None:  # its own Hessian operator (step cache) and run cache
                t0 = time.process_time()
                alt_out = alt.measure(dataclasses.replace(
                    ctx, cache={}, run_cache=caches["alt"],
                    generator=torch.Generator().manual_seed(step)))
                alt_ms = 1e3 * (time.process_time() - t0)
            op = training_hessian(model, task.loss, (x, y))
            ref = lanczos(op, k=max(1, args.subspace), tol=1e-7, max_iter=min(200, op.dim),
                          generator=torch.Generator().manual_seed(99))
            lam, vec = ref.values[0].item(), ref.vectors[:, 0]
            val = out.get("sharpness", out.get("sharpness_unconverged"))
            oracle = not args.no_oracle
            row = {"step": step, "probe_hvps": int(out["sharpness_matvecs"]),
                   "converged": bool(out["sharpness_converged"]),
                   "probe_rel_err": abs(val - lam) / abs(lam), "probe_ms": probe_ms,
                   "oracle_cold": oracle_count(op, None, lam, args.target, args.cap, step)
                   if oracle else None}
            if alt is not None:
                alt_val = alt_out.get("sharpness", alt_out.get("sharpness_unconverged"))
                row.update(alt_hvps=int(alt_out["sharpness_matvecs"]),
                           alt_conv=bool(alt_out["sharpness_converged"]),
                           alt_err=float(f"{abs(alt_val - lam) / abs(lam):.1e}"),
                           alt_est=float(f"{alt_out.get('sharpness_error_estimate', 0):.1e}"),
                           alt_ms=alt_ms)
            if prev is not None:
                row["oracle_warm"] = oracle_count(op, prev, lam, args.target, args.cap, step) \
                    if oracle else None
                row["cos"] = abs(torch.dot(prev, vec).item())
                row.update(block_columns(op, prev_block, vec, lam, args))
                rows.append(row)
            print(f"{step:5d} {row['probe_hvps']:6d} {row['converged']!s:>9} "
                  f"{row['probe_rel_err']:9.1e} {row.get('oracle_warm')!s:>9} "
                  f"{row['oracle_cold']!s:>11} {row.get('cos', float('nan')):8.3f}"
                  + "".join(f" {row[k]!s:>7}" for k in block_keys + alt_keys if k in row))
            prev, prev_block = vec.clone(), ref.vectors.clone()
        opt.step()

    def med(key: str) -> float:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return statistics.median(vals) if vals else float("nan")

    summary = {"probe_hvps_median": med("probe_hvps"), "probe_rel_err_max":
               max(r["probe_rel_err"] for r in rows), "oracle_warm_median": med("oracle_warm"),
               "oracle_cold_median": med("oracle_cold"), "cos_median": med("cos"),
               "share_within_5": sum(1 for r in rows if (r["oracle_warm"] or 99) <= 5)
               / len(rows), "probe_ms_median": med("probe_ms")}
    if alt is not None:
        summary.update(alt_hvps_median=med("alt_hvps"), alt_hvps_max=max(
            r["alt_hvps"] for r in rows), alt_rel_err_max=max(r["alt_err"] for r in rows),
            alt_over_1e3=sum(r["alt_err"] > 1e-3 for r in rows), alt_ms_median=med("alt_ms"),
            alt_unconverged=sum(not r["alt_conv"] for r in rows))
        print(f"  {args.method} probe (block {alt.block}): median {summary['alt_hvps_median']:g}"
              f" HVPs (max {summary['alt_hvps_max']}), max relative error "
              f"{summary['alt_rel_err_max']:.1e} ({summary['alt_over_1e3']} of {len(rows)} "
              f"above 1e-3, {summary['alt_unconverged']} unconverged), "
              f"{summary['alt_ms_median']:.1f} ms per measurement (median) against "
              f"{summary['probe_ms_median']:.1f} ms for the default probe")
    if args.subspace:
        summary["block"] = block_summary(rows, args.subspace)
        for b, figs in summary["block"].items():
            print(f"  block warm start b={b}: median share of the new top eigenvector in the "
                  f"old top-{b} span {figs['in_median']:.2f}; oracle to {args.target:g}: "
                  f"Rayleigh-Ritz expansion median {figs['rr_median']:g} (max "
                  f"{figs['rr_max']:g}), LOBPCG median {figs['lobpcg_median']:g} (max "
                  f"{figs['lobpcg_max']:g}) HVPs (inf: not within {args.cap})")
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
