"""Small float64 models, batches and contexts shared by the probe tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.probes import ProbeContext, build_probes
from trainlab.train import Monitor


def mlp(seed: int = 0, sizes: tuple[int, ...] = (5, 7, 6, 3), act: type[nn.Module] = nn.Tanh
        ) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers).double()


def batch(n: int = 12, d: int = 5, classes: int = 3, seed: int = 1
          ) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64),
            torch.randint(0, classes, (n,), generator=g))


class SeqLinear(nn.Module):
    """Linear layers on (N, T, D) inputs, mean-pooled over T."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x))).mean(1)


def loop_grads(model: nn.Module, loss_fn, x, y) -> torch.Tensor:
    """Reference per-example gradients: one backward pass per example, flattened (rows),
    the model's ``.grad`` given back as it was."""
    saved = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    rows = []
    for i in range(len(x)):
        model.zero_grad()
        loss_fn(model(x[i:i + 1]), y[i:i + 1]).backward()
        rows.append(torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()]))
    for p, g in zip(model.parameters(), saved):
        p.grad = g
    return torch.stack(rows)


def snapshot(model: nn.Module) -> dict:
    """Everything a probe must leave as it found: weights, grads, modes, buffers, RNG."""
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "grads": {n: None if p.grad is None else p.grad.clone()
                  for n, p in model.named_parameters()},
        "grad_ids": {n: id(p.grad) for n, p in model.named_parameters()},
        "modes": [m.training for m in model.modules()],
        "buffers": {n: b.clone() for n, b in model.named_buffers()},
        "rng": torch.get_rng_state(),
    }


def assert_unchanged(model: nn.Module, snap: dict) -> None:
    now = snapshot(model)
    for n, p in snap["params"].items():
        assert torch.equal(now["params"][n], p), n
    for n, g in snap["grads"].items():
        if g is None:
            assert now["grads"][n] is None, n
        else:
            assert torch.equal(now["grads"][n], g), n
    assert now["grad_ids"] == snap["grad_ids"]
    assert now["modes"] == snap["modes"]
    for n, b in snap["buffers"].items():
        assert torch.equal(now["buffers"][n], b), n
    assert torch.equal(now["rng"], snap["rng"])


def context(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, step: int = 1,
            optimizer: torch.optim.Optimizer | None = None, lr: float = 0.1,
            loss_fn=F.cross_entropy) -> ProbeContext:
    """A context built as :class:`~trainlab.train.Monitor` builds it at step 1: one update
    already applied (optimizer state and the previous parameters exist), then this batch's
    backward pass at the new parameters, and no update between that backward pass and the
    context (``p.grad`` is the gradient at the current parameters)."""
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = optimizer or torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    prev = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    return ProbeContext(step=step, model=model, loss_fn=loss_fn, batch=(x, y),
                        loss=loss.detach(), optimizer=opt, lr=lr, init_params=init,
                        prev_params=prev, generator=torch.Generator().manual_seed(0))


def monitored_steps(mon, model: nn.Module, opt, loss_fn, x, y, steps: int) -> list[float]:
    """A plain training loop with ``mon.step`` after each backward; every step must keep the
    loss finite. Returns the losses."""
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        assert mon.step(loss, (x, y))
        opt.step()
        losses.append(loss.item())
    return losses


def economy_history(model: nn.Module, dtype: torch.dtype, *, steps: int, batch: int,
                    every: int = 1) -> dict:
    """The history of a monitor with the ``economy`` preset (every ``every`` steps) over
    ``steps`` Adam steps (lr 1e-2) of ``model`` on random batches of 9 features, 4 classes."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt,
                  probes=build_probes("economy", every=every), total_steps=steps - 1)
    g = torch.Generator().manual_seed(5)
    for _ in range(steps):
        x, y = torch.randn(batch, 9, generator=g).to(dtype), torch.randint(0, 4, (batch,),
                                                                           generator=g)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        mon.step(loss, (x, y))
        opt.step()
    mon.finish()
    return mon.history


def captured_records(model: nn.Module, x: torch.Tensor, y: torch.Tensor, raw: bool = False
                     ) -> dict:
    """What a :class:`~trainlab.probes.per_sample.LinearCapture` records over one forward and
    backward pass of ``model`` on ``(x, y)`` (cross-entropy), the capture removed after
    (``raw``: as its hooks keep it, ``take_raw()``)."""
    from trainlab.probes.per_sample import LinearCapture

    cap = LinearCapture(model)
    cap.arm(True)
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    cap.arm(False)
    records = cap.take_raw() if raw else cap.take()
    cap.remove()
    return records


class RecordingSink:
    """Keeps each ``write(step, values)`` as ``(step, [(name, float.hex(value)), ...])`` in
    :attr:`writes` (names in the order received, values to the bit); :attr:`losses` is free
    for a test's own loop to fill."""

    def __init__(self):
        self.writes: list[tuple[int, list[tuple[str, str]]]] = []
        self.losses: list[float] = []

    def write(self, step, values):
        self.writes.append((step, [(n, float.hex(v)) for n, v in values.items()]))

    def close(self):  # a sink's interface; this test sink holds nothing to release
        pass
