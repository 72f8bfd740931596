"""Curvature engine vs PyHessian on CPU: HVP cost, top eigenvalue, trace error per HVP.

Everything is measured in one run on the same model and batch, and printed as ratios:

* HVP cost / gradient cost, median of repeats: ours from scratch (``--method``, default
  ``auto``, the operator's default: double backward, a fresh graph per product), ours
  through a retained gradient graph (``retain_graph=True``: the first product builds it,
  later ones are one backward pass), and PyHessian's (always a retained ``create_graph``
  graph).
* Memory of the retained-graph path over a plain gradient: bytes autograd saves for
  backward (``saved_tensors_hooks``), the retained ``create_graph`` graph and its gradients
  against one gradient's graph, on the same batch.
* Top Hessian eigenvalue to 1e-3 relative error: our Lanczos vs PyHessian's
  ``hessian(...).eigenvalues()`` power iteration (defaults ``maxIter=100, tol=1e-3``):
  HVPs, wall time, achieved error against a tight Lanczos reference. Also the number of
  power iterations PyHessian actually needs before its Rayleigh quotient is within 1e-3.
* Trace: RMS relative error at equal HVP budgets, our Hutch++ vs PyHessian's Hutchinson
  ``trace(maxIter=budget, tol=0)``, against a high-budget Hutch++ reference (its stderr is
  printed); plus PyHessian's default ``trace()`` (its count and error).

Example:
    python benchmarks/curvature.py --threads 1 --reps 3 --json /tmp/curvature.json
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from trainlab.curvature import HessianOperator, hutchinson_trace, hutchpp_trace, lanczos
from trainlab.models import build_model
from trainlab.tasks import build_task

# ``pyhessian/__init__`` rebinds the name ``pyhessian.hessian`` to the class; get the module.
pyh = importlib.import_module("pyhessian.hessian")


def median_time(fn: Callable[[], object], reps: int, warmup: int = 2) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), (max(times) - min(times)) / 2


class CountingHVP:
    """Wraps PyHessian's ``hessian_vector_product`` to count calls and record Rayleigh
    quotients ``<v, Hv>`` (PyHessian passes unit vectors in ``eigenvalues``)."""

    def __init__(self):
        self.original = pyh.hessian_vector_product
        self.calls, self.quotients = 0, []

    def __call__(self, grads, params, v):
        hv = self.original(grads, params, v)
        self.calls += 1
        self.quotients.append(sum((a * b).sum() for a, b in zip(hv, v)).item())
        return hv

    def __enter__(self):
        pyh.hessian_vector_product = self
        return self

    def __exit__(self, *exc):
        pyh.hessian_vector_product = self.original


def saved_bytes(fn: Callable[[], object]) -> tuple[int, object]:
    """Bytes of the distinct storages autograd saves for backward while ``fn`` runs (the
    graph's memory beyond parameters and inputs, which both paths share), and ``fn()``."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


def graph_memory(model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor
                 ) -> dict[str, float]:
    """Memory the retained-graph HVP path keeps over a plain gradient: the saved tensors of
    the gradient's graph (forward) against those of the retained ``create_graph`` graph
    (forward and the differentiable backward), plus the gradient tensors it keeps."""
    params = [p for p in model.parameters()]
    plain, _ = saved_bytes(lambda: torch.autograd.grad(loss_fn(model(x), y), params))
    op = HessianOperator(model, loss_fn, (x, y), method="double-backward", retain_graph=True,
                         check_deterministic=False)
    kept, _ = saved_bytes(lambda: op.matvec(torch.zeros(op.dim)))
    grads = sum(g.numel() * g.element_size() for g in op._graphs[0][1])
    return {"plain_gradient_graph_mb": plain / 2**20,
            "retained_graph_mb": (kept + grads) / 2**20,
            "retained_graph_memory_over_gradient": (kept + grads) / plain}


def problem_mnist1d(batch: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    task = build_task("mnist1d")
    torch.manual_seed(0)
    model = build_model("mlp", tuple(task.x_train.shape[1:]), 10)
    return model, task.x_train[:batch], task.y_train[:batch]


def problem_mlp784(batch: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 128), nn.Tanh(), nn.Linear(128, 10))
    g = torch.Generator().manual_seed(1)
    return model, torch.randn(batch, 784, generator=g), torch.randint(0, 10, (batch,),
                                                                      generator=g)


def run_problem(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                args: argparse.Namespace) -> dict:
    loss_fn = nn.CrossEntropyLoss()
    out: dict = {"problem": name, "params": sum(p.numel() for p in model.parameters()),
                 "batch": x.shape[0]}
    params = [p for p in model.parameters()]
    op = HessianOperator(model, loss_fn, (x, y), method=args.method)
    v = torch.randn(op.dim, generator=torch.Generator().manual_seed(0))
    retained = HessianOperator(model, loss_fn, (x, y), method="double-backward",
                               retain_graph=True)

    # --- HVP cost over gradient cost -------------------------------------------------------
    t_grad, _ = median_time(lambda: torch.autograd.grad(loss_fn(model(x), y), params),
                            args.reps * 4)
    t_hvp, _ = median_time(lambda: op.matvec(v), args.reps * 4)
    t_hvp_retained, _ = median_time(lambda: retained.matvec(v), args.reps * 4)
    block = torch.randn(op.dim, 16, generator=torch.Generator().manual_seed(1))
    t_mm, _ = median_time(lambda: op.matmat(block), args.reps)
    pmodel = copy.deepcopy(model)
    hess = pyh.hessian(pmodel, loss_fn, data=(x, y), cuda=False)
    pv = [torch.randn_like(p) for p in hess.params]
    t_pyh_hvp, _ = median_time(lambda: pyh.hessian_vector_product(hess.gradsH, hess.params, pv),
                               args.reps * 4)
    out.update(grad_ms=1e3 * t_grad, hvp_ms=1e3 * t_hvp, hvp_over_grad=t_hvp / t_grad,
               hvp_retained_over_grad=t_hvp_retained / t_grad,
               matmat16_per_column_over_grad=t_mm / 16 / t_grad,
               pyhessian_hvp_over_grad=t_pyh_hvp / t_grad)

    out.update(graph_memory(model, loss_fn, x, y))

    # --- top eigenvalue ----------------------------------------------------------------------
    ref = lanczos(op, k=1, tol=1e-9, max_iter=min(op.dim, 400),
                  generator=torch.Generator().manual_seed(123))
    lam = ref.values[0].item()
    ours = []
    for seed in range(args.reps):
        t0 = time.perf_counter()
        solve_op = op if not args.retain_graph else HessianOperator(
            model, loss_fn, (x, y), method="double-backward", retain_graph=True,
            check_deterministic=False)
        res = lanczos(solve_op, k=1, tol=args.tol,
                      generator=torch.Generator().manual_seed(seed))
        ours.append((time.perf_counter() - t0, res.matvecs,
                     abs(res.values[0].item() - lam) / abs(lam)))
    theirs = []
    for seed in range(args.reps):
        torch.manual_seed(seed)  # PyHessian draws its start from the global RNG
        pmodel = copy.deepcopy(model)
        with CountingHVP() as counter:
            t0 = time.perf_counter()
            vals, _ = pyh.hessian(pmodel, loss_fn, data=(x, y), cuda=False).eigenvalues()
            elapsed = time.perf_counter() - t0
        theirs.append((elapsed, counter.calls, abs(vals[0] - lam) / abs(lam)))
    torch.manual_seed(0)
    with CountingHVP() as counter:  # how many power steps reach 1e-3 at all
        pyh.hessian(copy.deepcopy(model), loss_fn, data=(x, y), cuda=False).eigenvalues(
            maxIter=args.power_max, tol=0.0)
    errs = [abs(q - lam) / abs(lam) for q in counter.quotients]
    needed = next((i + 1 for i, e in enumerate(errs) if e <= 1e-3), None)
    t_needed = None
    if needed is not None:  # PyHessian's wall time when run for exactly that many steps
        torch.manual_seed(0)
        t0 = time.perf_counter()
        pyh.hessian(copy.deepcopy(model), loss_fn, data=(x, y), cuda=False).eigenvalues(
            maxIter=needed, tol=0.0)
        t_needed = time.perf_counter() - t0
    med = [statistics.median(c) for c in zip(*ours)]
    pmed = [statistics.median(c) for c in zip(*theirs)]
    out.update(lambda_max=lam, reference_residual=ref.residuals[0].item(),
               ours_time_s=med[0], ours_hvps=med[1], ours_rel_err_max=max(o[2] for o in ours),
               pyhessian_time_s=pmed[0], pyhessian_hvps=pmed[1],
               pyhessian_rel_err_max=max(t[2] for t in theirs),
               pyhessian_hvps_to_1e_3=needed, pyhessian_time_to_1e_3_s=t_needed,
               hvp_ratio=pmed[1] / med[1], time_ratio=pmed[0] / med[0],
               hvp_ratio_to_1e_3=None if needed is None else needed / med[1],
               time_ratio_to_1e_3=None if t_needed is None else t_needed / med[0])

    # --- trace -------------------------------------------------------------------------------
    if op.dim <= args.exact_trace_max:  # exact: sum of e_i^T H e_i, in blocks of columns
        tr = 0.0
        for i in range(0, op.dim, 128):
            cols = torch.zeros(op.dim, min(128, op.dim - i))
            cols[torch.arange(i, i + cols.shape[1]), torch.arange(cols.shape[1])] = 1.0
            tr += (cols * op.matmat(cols)).sum().item()
        out.update(trace_reference=tr, trace_reference_stderr=0.0, trace_reference_kind="exact")
    else:
        reference = hutchpp_trace(op, num_matvecs=args.trace_reference,
                                  generator=torch.Generator().manual_seed(999))
        tr = reference.value
        out.update(trace_reference=tr, trace_reference_stderr=reference.stderr,
                   trace_reference_kind=f"hutch++ with {args.trace_reference} HVPs")
    for budget in args.budgets:
        pp, hu, py = [], [], []
        for seed in range(args.reps):
            g = torch.Generator().manual_seed(seed)
            pp.append((hutchpp_trace(op, num_matvecs=budget, generator=g).value - tr) / tr)
            hu.append((hutchinson_trace(op, num_matvecs=budget, generator=g).value - tr) / tr)
            torch.manual_seed(seed)
            pmodel = copy.deepcopy(model)
            samples = pyh.hessian(pmodel, loss_fn, data=(x, y), cuda=False).trace(
                maxIter=budget, tol=0.0)
            py.append((sum(samples) / len(samples) - tr) / tr)

        def rms(e: list[float]) -> float:
            return math.sqrt(sum(a * a for a in e) / len(e))

        out[f"trace_rms_rel_err@{budget}"] = {"hutchpp": rms(pp), "hutchinson": rms(hu),
                                              "pyhessian": rms(py),
                                              "pyhessian_over_hutchpp": rms(py) / rms(pp)}
    torch.manual_seed(0)
    pmodel = copy.deepcopy(model)
    with CountingHVP() as counter:
        samples = pyh.hessian(pmodel, loss_fn, data=(x, y), cuda=False).trace()
    out["pyhessian_default_trace"] = {"hvps": counter.calls,
                                      "rel_err": abs(sum(samples) / len(samples) - tr) / tr}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tol", type=float, default=1e-2, help="our Lanczos residual tol")
    parser.add_argument("--power-max", type=int, default=300)
    parser.add_argument("--budgets", type=int, nargs="+", default=[30, 99])
    parser.add_argument("--trace-reference", type=int, default=900)
    parser.add_argument("--exact-trace-max", type=int, default=30000,
                        help="exact trace (dim HVPs) when the model has at most this many")
    parser.add_argument("--mnist1d-batch", type=int, default=1000)
    parser.add_argument("--mlp-batch", type=int, default=1024)
    parser.add_argument("--only", choices=["mnist1d", "mlp784"], default=None)
    parser.add_argument("--method", choices=["auto", "forward-over-reverse", "double-backward"],
                        default="auto", help="HessianOperator product method (its default)")
    parser.add_argument("--retain-graph", action=argparse.BooleanOptionalAction, default=True,
                        help="our top-eigenvalue solve builds its operator with "
                             "retain_graph=True (inside the timing), as PyHessian does")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    env = {"torch": torch.__version__, "threads": args.threads, "cpu": platform.processor(),
           "python": platform.python_version()}
    results = []
    problems = {"mnist1d": lambda: problem_mnist1d(args.mnist1d_batch),
                "mlp784": lambda: problem_mlp784(args.mlp_batch)}
    for name, make in problems.items():
        if args.only and name != args.only:
            continue
        res = run_problem(name, *make(), args)
        results.append(res)
        print(json.dumps(res, indent=1))
        print(f"[{name}] HVP/grad {res['hvp_over_grad']:.2f}, retained graph "
              f"{res['hvp_retained_over_grad']:.2f} (PyHessian "
              f"{res['pyhessian_hvp_over_grad']:.2f}); retained graph memory "
              f"{res['retained_graph_memory_over_gradient']:.2f}x a gradient's "
              f"({res['retained_graph_mb']:.1f} MB); top eig: PyHessian/ours HVPs "
              f"{res['hvp_ratio']:.2f}x, time {res['time_ratio']:.2f}x; to 1e-3: HVPs "
              f"{res['hvp_ratio_to_1e_3']}x, time {res['time_ratio_to_1e_3']}x; our max rel err "
              f"{res['ours_rel_err_max']:.1e}, PyHessian's {res['pyhessian_rel_err_max']:.1e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
