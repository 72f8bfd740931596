"""Tutorial: add your own optimizer and get trainlab's contract battery for free.

An optimizer registered in ``trainlab.optim.OPTIMIZERS`` is usable everywhere at once:
``trainlab run --import own_optimizer --optim normalized-sgd`` (run from ``examples/``, or
with the module on ``PYTHONPATH``), configs, grids, the
probes that read optimizer state, and the contract battery of ``tests/optim/test_contract.py``
(state-dict round trip resumes exactly, ``p.grad`` left as computed, every param group's
own ``lr`` honoured, parameters without a gradient untouched, bad inputs rejected with a
``ConfigError``, the scheduled lr followed under every schedule), which runs over every
registry entry, plug-ins included.

The optimizer here is normalized SGD with momentum ("Momentum Improves Normalized SGD",
Cutkosky & Mehta, ICML 2020): :math:`m \\leftarrow \\beta m + (1-\\beta) g`, then
:math:`w \\leftarrow w - \\eta\\, m / (\\|m\\| + \\epsilon)` per parameter tensor (the paper
normalizes the whole momentum vector; per tensor keeps each param group independent).

Run: python examples/own_optimizer.py [--steps 200] [--store DIR] [--check]
(--check runs the contract battery on it: `pytest tests/optim/test_contract.py` with
``TRAINLAB_IMPORT=own_optimizer``, from a trainlab checkout.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch

from trainlab.errors import check_range
from trainlab.optim import OPTIMIZERS


class NormalizedSGD(torch.optim.Optimizer):
    """Normalized SGD with momentum (Cutkosky & Mehta 2020), per parameter tensor.

    Args:
        params: parameters or param groups (each group may set its own hyperparameters).
        lr: step length :math:`\\eta` (the norm of each tensor's update).
        momentum: :math:`\\beta` in [0, 1).
        eps: added to the momentum norm (a zero momentum gives a zero step).
    """

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.9, eps: float = 1e-12):
        check_range("lr", lr, low=0.0, owner="normalized-sgd")
        check_range("momentum", momentum, low=0.0, high=1.0, high_open=True,
                    owner="normalized-sgd")
        check_range("eps", eps, low=0.0, owner="normalized-sgd")
        super().__init__(params, {"lr": lr, "momentum": momentum, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                m = state["momentum_buffer"]
                m.mul_(beta).add_(p.grad, alpha=1 - beta)
                p.sub_(m, alpha=group["lr"] / (float(m.norm()) + group["eps"]))
        return loss


if "normalized-sgd" not in OPTIMIZERS:  # imported twice (script and plug-in): once
    OPTIMIZERS.register("normalized-sgd", NormalizedSGD,
                        summary="normalized SGD with momentum, per tensor (a tutorial's own "
                                "optimizer)")


def contract_battery(root: Path) -> int:
    """Run the optimizer contract battery on ``normalized-sgd`` (exit status of pytest)."""
    env = {**os.environ, "TRAINLAB_IMPORT": "own_optimizer",
           "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root / "examples"),
                                          os.environ.get("PYTHONPATH", "")])}
    return subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(root / "tests/optim/test_contract.py"), "-k",
                            "normalized-sgd"], cwd=root, env=env)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--store", default="trainlab-runs")
    parser.add_argument("--check", action="store_true", help="run the contract battery")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from trainlab.store import RunStore
    from trainlab.train import RunConfig, Trainer

    cfg = RunConfig(task="gaussian-mixture", optim="normalized-sgd", lr=0.05,
                    optim_params={"momentum": 0.9}, steps=args.steps, batch_size=64,
                    probes="grad-norm,update-ratio,momentum-alignment",
                    every=max(1, args.steps // 10), name="normalized-sgd")
    result = Trainer(cfg, store=RunStore(args.store), report=False).run()
    print(f"normalized-sgd: {result.status}, final loss {result.summary['final_loss']:.4g}")
    status = contract_battery(Path(__file__).resolve().parents[1]) if args.check else None
    if status is not None:
        print("contract battery:", "passed" if status == 0 else f"failed (pytest {status})")
    return {"result": result, "battery": status}


if __name__ == "__main__":
    main()
