"""Your own training loop, with trainlab's init, probes, run store and report.

Run: python examples/own_loop.py   (about 10 s on a laptop CPU)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import trainlab.init as tinit
from trainlab.report import write_run_report
from trainlab.store import RunStore
from trainlab.tasks import build_task
from trainlab.train import Monitor


def main() -> None:
    task = build_task("mnist1d")
    model = torch.nn.Sequential(torch.nn.Linear(40, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    g = torch.Generator().manual_seed(0)
    tinit.apply(model, "lsuv", batch=task.x_train[:512], generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    steps, store = 1000, RunStore()
    with Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, probes="standard", every=100,
                 total_steps=steps, store=store, task=task, name="own-loop") as mon:
        for step in range(steps + 1):
            idx = torch.randint(0, len(task.x_train), (128,), generator=g)
            opt.zero_grad()
            loss = F.cross_entropy(model(task.x_train[idx]), task.y_train[idx])
            loss.backward()
            if not mon.step(loss, (task.x_train[idx], task.y_train[idx])):
                mon.finish("diverged")  # the loss became NaN/Inf: a result, not a crash
                break
            if step < steps:
                opt.step()
    print(mon.summary())
    print("report:", write_run_report(store, mon.run_id))


if __name__ == "__main__":
    main()
