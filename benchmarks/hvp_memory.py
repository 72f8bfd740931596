"""Peak memory of a Hessian-vector product through a retained gradient graph, over a plain
gradient, measured by the CPU allocator's own reports.

How it is measured. ``torch.profiler.profile(profile_memory=True)`` makes c10's CPU
allocator report every allocation and free (bytes, time) to the profiler; the raw events
(``prof.profiler.kineto_results.events()``, name ``[memory]``) are replayed in time order and
the running sum's maximum is the peak of memory allocated *during* the call, above what was
live before it (parameters, batch, and anything else the caller holds are not counted, in
every path alike). It sees every tensor allocation made through torch's CPU allocator (no
sampling, no Python-level bookkeeping), and the script checks this first on allocations of
known size (``calibration``: two tensors of 4 MiB and 2 MiB, one freed before the other is
made, must give a 4 MiB peak, exactly). Not counted: memory outside torch's allocator
(Python objects, the autograd nodes' own C++ structs), small against the tensors here.

Figures (each path timed on its own fresh operator, same model, batch and vector):

* ``plain_gradient``: ``torch.autograd.grad(loss, params)``, the reference.
* ``retained_first``: first product of ``HessianOperator(retain_graph=True)``: builds the
  ``create_graph`` gradient graph and keeps it, then one backward pass through it.
* ``retained_later``: a later product through the kept graph.
* ``retained_held``: what stays allocated between products (the kept graph and gradients).
* ``fresh``: a product without a kept graph (``graph_budget_mb`` exceeded: the fallback).
* ``budget_estimate``: the operator's own count of the kept graph (what the budget is
  compared with), against ``retained_held``.

Example:
    python benchmarks/hvp_memory.py --json /tmp/hvp_memory.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from curvature import problem_mlp784, problem_mnist1d
from trainlab.curvature import HessianOperator

# the two problems of benchmarks/curvature.py (the MNIST-1D MLP and a 784-128-10 tanh MLP)
PROBLEMS = {"mnist1d": problem_mnist1d, "mlp784": problem_mlp784}

MIB = 2**20


def allocated_peak(fn: Callable[[], object]) -> tuple[int, int, object]:
    """``(peak, net, fn())``: the largest number of bytes allocated at once during ``fn``
    above the level at its start, and the bytes still allocated at its end (the result
    included), from the CPU allocator's reports to the profiler."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    level = peak = 0
    for _, nbytes in events:
        level += nbytes
        peak = max(peak, level)
    return peak, level, out


def calibration() -> int:
    """Peak of a 4 MiB tensor, freed, then a 2 MiB one: must be 4 MiB."""
    def fn() -> None:
        a = torch.empty(MIB, dtype=torch.float32)
        del a
        b = torch.empty(MIB // 2, dtype=torch.float32)
        del b

    return allocated_peak(fn)[0]


def measure(name: str, batch: int) -> dict:
    model, x, y = PROBLEMS[name](batch)
    loss_fn = nn.CrossEntropyLoss()
    params = list(model.parameters())
    plain, _, _ = allocated_peak(lambda: torch.autograd.grad(loss_fn(model(x), y), params))
    kept = HessianOperator(model, loss_fn, (x, y), method="double-backward", retain_graph=True,
                           check_deterministic=False)
    v = torch.randn(kept.dim, generator=torch.Generator().manual_seed(0))
    first, held, hv = allocated_peak(lambda: kept.matvec(v))
    held -= hv.numel() * hv.element_size()
    later, _, hv2 = allocated_peak(lambda: kept.matvec(v))
    logging.getLogger("trainlab").setLevel(logging.ERROR)  # the fallback's expected warning
    fresh_op = HessianOperator(model, loss_fn, (x, y), method="double-backward",
                               retain_graph=True, graph_budget_mb=0.0,
                               check_deterministic=False)
    fresh, fresh_net, hv3 = allocated_peak(lambda: fresh_op.matvec(v))
    assert torch.equal(hv, hv2) and torch.equal(hv, hv3), "paths disagree"
    return {"problem": name, "batch": batch, "params": kept.dim,
            "plain_gradient_peak_mb": plain / MIB, "retained_first_peak_mb": first / MIB,
            "retained_later_peak_mb": later / MIB, "retained_held_mb": held / MIB,
            "fresh_peak_mb": fresh / MIB,
            "fresh_held_mb": (fresh_net - hv3.numel() * hv3.element_size()) / MIB,
            "budget_estimate_mb": kept.retained_mb,
            "retained_first_peak_over_gradient": first / plain,
            "retained_later_peak_over_gradient": later / plain,
            "retained_held_over_gradient": held / plain, "fresh_peak_over_gradient": fresh / plain,
            "budget_estimate_over_held": kept.retained_mb * MIB / held}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=["mnist1d:1000", "mlp784:1024"],
                    help="name:batch (name mnist1d or mlp784)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cal = calibration()
    print(f"torch {torch.__version__}, 1 thread, load {os.getloadavg()[0]:.1f}; calibration "
          f"peak {cal / MIB:.3f} MiB (expected 4.000)")
    if cal != 4 * MIB:
        raise SystemExit("the profiler's allocation reports do not add up; not measuring")
    rows = []
    for spec in args.problems:
        name, batch = spec.split(":")
        r = measure(name, int(batch))
        rows.append(r)
        peaks = ", ".join(f"{k} {r[k + '_peak_mb']:.2f} ({r[k + '_peak_over_gradient']:.2f}x)"
                          for k in ("retained_first", "retained_later", "fresh"))
        print(f"[{name}, batch {r['batch']}, {r['params']} params] peak MiB: gradient "
              f"{r['plain_gradient_peak_mb']:.2f}, {peaks}; kept between products: "
              f"retained {r['retained_held_mb']:.2f} ({r['retained_held_over_gradient']:.2f}x "
              f"the gradient's peak), fresh {r['fresh_held_mb']:.2f}; the budget's count "
              f"{r['budget_estimate_mb']:.2f} ({r['budget_estimate_over_held']:.2f}x kept)")
    if args.json:
        record = {"torch": torch.__version__, "calibration_mb": cal / MIB, "rows": rows}
        Path(args.json).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
