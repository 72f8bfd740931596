"""The same numbers on a GPU as on the CPU, and how much faster: the demo run, the top
Hessian eigenvalue and the ``economy`` probes, each on the CPU and on ``--device``.

1. demo: ``trainlab run`` 's default config (MNIST-1D MLP, AdamW, D2Z, ``standard`` probes)
   for ``--steps`` steps through the Trainer, every recorded metric compared.
2. curvature: the top Hessian eigenvalue of an MNIST-1D MLP's batch loss by Lanczos on
   Hessian-vector products (``trainlab.curvature``).
3. probes: a plain loop with a Monitor running the ``economy`` preset at every step.

Each section prints the largest relative difference between the devices (over every metric
and step), PASS when it is within the float32 tolerance ``--rtol``, and the wall-clock
speed-up (CPU time / device time, each after one untimed warm-up call; the device is
synchronized before each clock read). On a
machine without CUDA it says so and exits 0; a section that fails on the device prints the
error and the script exits 1.

Example:
    python benchmarks/device_parity.py                       # cuda vs cpu
    python benchmarks/device_parity.py --device cuda:1 --steps 300
    python benchmarks/device_parity.py --device cpu --quick  # the script itself, CPU vs CPU
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.curvature import HessianOperator, lanczos
from trainlab.models import build_model
from trainlab.store import RunStore
from trainlab.tasks import build_task
from trainlab.train import Monitor, RunConfig, Trainer


def timed(device: torch.device, fn: Callable[[], object]) -> tuple[object, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - t0


def max_rel_diff(a: dict[str, list[float]], b: dict[str, list[float]]) -> tuple[float, str]:
    """Largest |a - b| / max(|a|, 1e-6) over the metrics both have (name of the worst)."""
    worst, name = 0.0, ""
    for key in sorted(set(a) & set(b)):
        x, y = np.asarray(a[key], float), np.asarray(b[key], float)
        if x.shape != y.shape:
            return float("inf"), f"{key} (different steps)"
        d = float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1e-6))) if x.size else 0.0
        if d > worst:
            worst, name = d, key
    return worst, name


def demo(device: torch.device, steps: int) -> dict[str, list[float]]:
    cfg = RunConfig(steps=steps, every=max(1, steps // 4), device=str(device))
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        result = Trainer(cfg, store=store, report=False).run()
        out = {k: v.tolist() for k, (_, v) in store.metrics(result.run_id).items()}
        store.close()
    return out


def mnist1d_mlp(device: torch.device, batch: int):
    task = build_task("mnist1d")
    torch.manual_seed(0)  # the benchmark's own draw: the same weights on every device
    model = build_model("mlp", task.input_shape, task.num_outputs)
    x, y = task.x_train[:batch], task.y_train[:batch]
    return model.to(device), x.to(device), y.to(device)


def curvature(device: torch.device, batch: int) -> dict[str, list[float]]:
    model, x, y = mnist1d_mlp(device, batch)
    op = HessianOperator(model, F.cross_entropy, (x, y))
    res = lanczos(op, k=1, tol=1e-7, max_iter=200, generator=torch.Generator().manual_seed(0))
    return {"top_eigenvalue": [float(res.values[0])]}


def probes(device: torch.device, steps: int, batch: int) -> dict[str, list[float]]:
    model, x, y = mnist1d_mlp(device, batch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, probes="economy", every=1,
                  total_steps=steps)
    for k in range(steps + 1):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        mon.step(loss, (x, y))
        if k < steps:
            opt.step()
    mon.finish()
    return {name: [v for _, v in rows] for name, rows in mon.history.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("--quick", action="store_true", help="a few steps, small batch")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch = 10, 64
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"no CUDA device on this machine (torch {torch.__version__}): nothing to compare;"
              " run this on a machine with a GPU")
        return 0
    device = torch.device(args.device)
    cpu = torch.device("cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    print(f"torch {torch.__version__}; CPU vs {device} ({name}); rtol {args.rtol:g}")
    sections = {
        "demo (Trainer, standard probes)": lambda d: demo(d, args.steps),
        "curvature (top Hessian eigenvalue)": lambda d: curvature(d, args.batch),
        "probes (economy at every step)": lambda d: probes(d, args.steps, args.batch),
    }
    failed = False
    for title, fn in sections.items():
        try:  # each timed after one untimed call (data cache, CUDA context and kernels)
            fn(cpu)
            ref, t_cpu = timed(cpu, lambda fn=fn: fn(cpu))
            fn(device)
            got, t_dev = timed(device, lambda fn=fn: fn(device))
        except Exception:  # report and go on with the next section
            print(f"{title}: FAILED on {device}\n{traceback.format_exc()}")
            failed = True
            continue
        diff, worst = max_rel_diff(ref, got)
        ok = diff <= args.rtol and set(ref) == set(got)
        failed |= not ok
        missing = sorted(set(ref) ^ set(got))
        print(f"{title}: {'PASS' if ok else 'FAIL'}  max rel diff {diff:.2e} ({worst})"
              f"{'  metrics on one side only: ' + ', '.join(missing) if missing else ''}"
              f"  cpu {t_cpu:.2f}s  {device} {t_dev:.2f}s  speed-up {t_cpu / t_dev:.2f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
