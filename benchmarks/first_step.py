"""Time of the first step of a ``fused=True`` optimizer in a new process, with a cold and
with a warm compile cache, beside plain torch's first step.

Each measurement is a fresh Python process (``sys.executable``, one thread) that imports
torch and trainlab, builds the optimizer on a small model's worth of tensors (8 x 100k
float32, gradients set) and times ``step()`` twice: the first step includes compiling
(cold cache) or loading the compiled kernels (warm cache), the second is the steady cost.
The compile cache is a fresh temporary folder given through ``TRAINLAB_COMPILE_CACHE``
(see :mod:`trainlab.optim._compiled`): the first process finds it empty (cold), the later
ones find what the first wrote (warm). The references, in their own fresh processes:
``torch.optim.AdamW(fused=True)`` (a C++ kernel, no compilation) and ``torch.optim.SGD``
(whose construction imports ``torch._dynamo`` and ``torch._inductor``: torch wraps
``Optimizer.add_param_group`` in ``torch._disable_dynamo``; trainlab's optimizers skip that
import, :mod:`trainlab.optim._lazy_dynamo`). Each row gives the medians over the warm
processes of the first step alone (the target), of the build, of the import of torch and
trainlab, and of all three together, and says which of torch's compiler modules the last
warm process had imported after its first step. Run it on an idle machine (``uptime``): the
figures scale with the load.

    python benchmarks/first_step.py --methods ademamix diffgrad --warm 5 --json /tmp/fs.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
torch.set_num_threads(1)
import trainlab.optim as to
t_import = time.perf_counter() - t0
method = sys.argv[1]
g = torch.Generator().manual_seed(0)
ps = [torch.randn(100_000, generator=g).requires_grad_(True) for _ in range(8)]
for p in ps:
    p.grad = torch.randn(100_000, generator=g) * 1e-2
t0 = time.perf_counter()
if method == "torch-adamw-fused":
    opt = torch.optim.AdamW(ps, lr=1e-3, fused=True)
elif method == "torch-sgd":
    opt = torch.optim.SGD(ps, lr=1e-3)
else:
    opt = to.build_optimizer(method, ps, lr=1e-3, fused=True)
t_build = time.perf_counter() - t0
t0 = time.perf_counter()
opt.step()
t_first = time.perf_counter() - t0
t0 = time.perf_counter()
opt.step()
t_second = time.perf_counter() - t0
print(json.dumps({"import_s": t_import, "build_s": t_build, "first_step_s": t_first,
                  "second_step_s": t_second,
                  "dynamo_imported": "torch._dynamo" in sys.modules,
                  "inductor_imported": "torch._inductor" in sys.modules}))
"""


def run_child(method: str, cache: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRAINLAB_COMPILE_CACHE": cache}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", CHILD, method], capture_output=True,
                         text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["ademamix", "diffgrad"])
    ap.add_argument("--warm", type=int, default=5, help="warm-cache processes per method")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in ["torch-adamw-fused", "torch-sgd", *args.methods]:
            cache = str(Path(tmp) / method)
            runs = [run_child(method, cache) for _ in range(1 + args.warm)]
            warm = runs[1:]
            row = {"method": method, "cold": runs[0], "warm": warm,
                   "warm_first_step_s": statistics.median(r["first_step_s"] for r in warm),
                   "warm_build_s": statistics.median(r["build_s"] for r in warm),
                   "warm_import_s": statistics.median(r["import_s"] for r in warm),
                   "warm_total_s": statistics.median(
                       r["import_s"] + r["build_s"] + r["first_step_s"] for r in warm),
                   "load": os.getloadavg()[0]}
            rows.append(row)
            stack = ("torch._inductor" if warm[-1].get("inductor_imported") else
                     "torch._dynamo" if warm[-1].get("dynamo_imported") else "no compiler")
            print(f"{method:18s} first step: cold {runs[0]['first_step_s']:6.2f} s, warm "
                  f"{row['warm_first_step_s']:6.2f} s (build {row['warm_build_s']:.2f} s, "
                  f"import {row['warm_import_s']:.2f} s, import+build+first "
                  f"{row['warm_total_s']:.2f} s, second step "
                  f"{1e3 * warm[-1]['second_step_s']:.1f} ms, {stack} imported); "
                  f"load {row['load']:.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
