"""The reference the trainer-integration tests compare with: a plain SGD loop (lr 0.1,
momentum 0.9, MSE) on consecutive batches, the Monitor called by hand (its own
convention)."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.train import Monitor


def plain_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
               batch_size: int, probes: str, clip: float | None = None
               ) -> dict[str, list[tuple[int, float]]]:
    """The Monitor's history of ``steps`` SGD steps on batches ``k * batch_size`` onwards
    (wrapping around), gradients clipped to ``clip`` after the Monitor saw them."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    mon = Monitor(model, loss_fn=nn.functional.mse_loss, optimizer=opt, probes=probes,
                  every=1, total_steps=steps - 1)
    for k in range(steps):
        i = (k * batch_size) % len(x)
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(xb), yb)
        loss.backward()
        mon.step(loss, (xb, yb))
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    mon.finish()
    return mon.history
