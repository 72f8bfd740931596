"""Tutorial: choose an init for a 50-layer network with ``trainlab inspect``.

Before training, ``trainlab inspect`` measures a model's initial state under several init
schemes: the variance of each layer's pre-activations (forward signal) and of the gradients
flowing back (backward signal), and the singular values of the input-output Jacobian
(dynamical isometry: "Resurrecting the sigmoid in deep learning through dynamical
isometry", Pennington, Schoenholz & Ganguli 2017). A scheme under which the signal neither
explodes nor vanishes through 50 layers, with Jacobian singular values close together,
trains; one whose signal dies does not. This script runs the inspection (the CLI's own
code, with ``--json``), picks the scheme whose forward and backward variance ratios stay
closest to 1, and trains the deep network briefly under the best and the worst scheme.

Run: python examples/choose_init_deep.py [--depth 50] [--steps 100] [--store DIR]
The same from the command line:
    trainlab inspect --task gaussian-mixture --model mlp -p depth=50 -p width=64 \\
        --init orthogonal,kaiming-normal,xavier-normal,lsuv,small --out init.html
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math

import torch

from trainlab.cli import main as trainlab
from trainlab.store import RunStore
from trainlab.train import RunConfig, Trainer

SCHEMES = "orthogonal,kaiming-normal,xavier-normal,lsuv,small"


def inspect_schemes(depth: int, width: int) -> dict[str, dict[str, float]]:
    """``trainlab inspect ... --json``: each scheme's scalar summary."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = trainlab(["inspect", "--task", "gaussian-mixture", "--model", "mlp",
                         "-p", f"depth={depth}", "-p", f"width={width}", "--init", SCHEMES,
                         "--measures", "signal,jacobian", "--batch-size", "128", "--json"])
    assert code == 0
    return {s["scheme"]: s["summary"] for s in json.loads(out.getvalue())["schemes"]}


def distortion(summary: dict[str, float]) -> float:
    """How far the signal drifts through depth: |log10| of the forward variance ratio
    (last layer over first) plus that of the backward one (inf when either is missing)."""
    ratios = (summary.get("forward_var_ratio"), summary.get("backward_var_ratio"))
    if any(r is None or not r > 0 or not math.isfinite(r) for r in ratios):
        return math.inf
    return sum(abs(math.log10(r)) for r in ratios)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--store", default="trainlab-runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    summaries = inspect_schemes(args.depth, args.width)
    ranked = sorted(summaries, key=lambda s: distortion(summaries[s]))
    for scheme in ranked:
        s = summaries[scheme]
        print(f"{scheme:15s} forward var ratio {s['forward_var_ratio'] or math.nan:9.3g}  "
              f"backward var ratio {s['backward_var_ratio'] or math.nan:9.3g}  "
              f"Jacobian sv log10 spread {s['jacobian_sv_log10_spread'] or math.nan:6.3g}")
    best, worst = ranked[0], ranked[-1]
    print(f"best: {best}; worst: {worst}")

    store, finals = RunStore(args.store), {}
    for scheme in (best, worst):
        cfg = RunConfig(task="gaussian-mixture", model="mlp",
                        model_params={"depth": args.depth, "width": args.width}, init=scheme,
                        optim="adamw", lr=1e-3, steps=args.steps, batch_size=64,
                        probes="grad-norm", every=max(1, args.steps // 5),
                        name=f"depth{args.depth}-{scheme}")
        result = Trainer(cfg, store=store, report=False).run()
        finals[scheme] = result.summary["final_loss"]
        print(f"{scheme}: {result.status}, final loss {finals[scheme]:.4g}")
    return {"summaries": summaries, "best": best, "worst": worst, "final_loss": finals}


if __name__ == "__main__":
    main()
