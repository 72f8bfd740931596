"""Steps to a target test accuracy for deep ReLU MLPs on MNIST-1D, per init scheme and depth.

For each depth (default 4, 16, 64 hidden layers of width 64) and each scheme, the same model
is initialized from the same seed, then trained with Adam (lr 1e-3, batch 128) for a fixed
budget of steps; test accuracy is evaluated every ``--eval-every`` steps. Prints the first
step at which the target accuracy is reached ("-" = not within the budget), the final test
accuracy, and the ratio of steps to the reference scheme (He/Kaiming normal) measured in the
same run. Median over ``--seeds`` seeds.

Example:
    python benchmarks/init_depth.py --depths 4,16,64 --steps 600 --target 0.5
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time

import torch

from trainlab.init import apply
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.tasks import build_task

SCHEMES = {  # name -> (scheme, hyper-parameters): all for a ReLU network
    "kaiming-normal": ("kaiming-normal", {}),
    "torch-default": ("torch-default", {}),
    "orthogonal(gain sqrt2)": ("orthogonal", {"gain": math.sqrt(2.0)}),
    "lsuv": ("lsuv", {}),
    "idinit": ("idinit", {}),
    "edge-of-chaos(orth)": ("edge-of-chaos", {"activation": "relu", "sigma_b2": 0.0,
                                              "structure": "orthogonal"}),
    "xavier-normal": ("xavier-normal", {}),
}


def steps_to_target(task, depth: int, width: int, scheme: str, hyper: dict, seed: int,
                    steps: int, target: float, eval_every: int, batch: int
                    ) -> tuple[int | None, float]:
    model = build_model("mlp", task.input_shape, task.num_outputs, depth=depth, width=width)
    init_batch = task.x_train[:512] if scheme == "lsuv" else None
    apply(model, scheme, batch=init_batch, generator=torch.Generator().manual_seed(seed),
          **hyper)
    opt = build_optimizer("adam", model.parameters(), lr=1e-3)
    order = torch.Generator().manual_seed(1000 + seed)
    n = task.x_train.shape[0]
    reached, acc = None, 0.0
    for step in range(1, steps + 1):
        idx = torch.randint(0, n, (batch,), generator=order)
        loss = task.loss(model(task.x_train[idx]), task.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                acc = task.metrics(model(task.x_test), task.y_test)["accuracy"].item()
            if reached is None and acc >= target:
                reached = step
    return reached, acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", default="4,16,64")
    p.add_argument("--schemes", default=",".join(SCHEMES))
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--target", type=float, default=0.5)
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    task = build_task("mnist1d")
    depths = [int(d) for d in args.depths.split(",")]
    names = [s for s in args.schemes.split(",") if s]
    results: dict[str, dict[int, dict]] = {}
    t0 = time.perf_counter()
    for name in names:
        scheme, hyper = SCHEMES[name]
        results[name] = {}
        for depth in depths:
            runs = [steps_to_target(task, depth, args.width, scheme, hyper, s, args.steps,
                                    args.target, args.eval_every, args.batch)
                    for s in range(args.seeds)]
            reached = [r for r, _ in runs]
            med = statistics.median([r if r is not None else math.inf for r in reached])
            results[name][depth] = {"steps": None if math.isinf(med) else med,
                                    "final_acc": statistics.median(a for _, a in runs)}
    ref = results.get("kaiming-normal")
    head = f"{'scheme':<24}" + "".join(f"{'depth ' + str(d):>22}" for d in depths)
    print(f"steps to test accuracy >= {args.target} (budget {args.steps}; final acc; "
          f"ratio to kaiming-normal), width {args.width}, Adam 1e-3, batch {args.batch}")
    print(head)
    for name in names:
        cells = []
        for d in depths:
            r = results[name][d]
            s = "-" if r["steps"] is None else f"{r['steps']:.0f}"
            ratio = ""
            if ref and r["steps"] is not None and ref[d]["steps"]:
                ratio = f" x{r['steps'] / ref[d]['steps']:.2f}"
            cells.append(f"{s + ratio} ({r['final_acc']:.2f})")
        print(f"{name:<24}" + "".join(f"{c:>22}" for c in cells))
    print(f"total {time.perf_counter() - t0:.0f}s, torch {torch.__version__}, "
          f"threads {args.threads}, {platform.processor() or platform.machine()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results, "torch": torch.__version__}, f,
                      indent=2)


if __name__ == "__main__":
    main()
