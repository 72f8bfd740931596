"""The Lightning callback, run by a real ``lightning.Trainer`` on the CPU, against the
Monitor in a plain loop on the same data and initialization."""

import logging
import math

import _plain_loop
import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainlab.integrations.lightning import TrainlabCallback
from trainlab.store import RunStore
from trainlab.train import Monitor

# Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates (inside Lightning)
pytestmark = pytest.mark.filterwarnings(
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning")

PROBES = "grad-norm,update-ratio"


def data(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randn(n, 1, generator=g)


def net(seed=0):
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model


class Regression(pl.LightningModule):
    def __init__(self, lr=0.1):
        super().__init__()
        self.net, self.lr = net(), lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def fit(cb, steps, batch_size, module=None, **trainer_kwargs):
    """A real lightning.Trainer on the CPU, the data in order (no shuffling)."""
    x, y = data()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=steps, callbacks=[cb],
                         enable_progress_bar=False, logger=False, enable_checkpointing=False,
                         enable_model_summary=False, **trainer_kwargs)
    trainer.fit(module or Regression(), loader)
    return trainer


def plain_loop(steps, batch_size, clip=None):
    """The same training as a plain loop, the Monitor called by hand (its own convention)."""
    return _plain_loop.plain_loop(net(), *data(), steps, batch_size, PROBES, clip)


def values(history, name):
    return [v for _, v in history[name]]


@pytest.fixture(autouse=True)
def _quiet_lightning():
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


def test_callback_records_what_a_plain_loop_records(tmp_path):
    store = RunStore(tmp_path)
    cb = TrainlabCallback(probes=PROBES, every=1, store=store, report=True)
    fit(cb, 6, 8)
    ref = plain_loop(6, 8)
    got = cb.monitor.history
    assert [s for s, _ in got["loss"]] == list(range(6))
    for name in ("loss", "grad_norm", "update_ratio", "lr"):
        assert values(got, name) == pytest.approx(values(ref, name), rel=1e-5, abs=1e-7), name
    rec = store.get_run(cb.run_id)
    assert rec.status == "completed" and rec.config["integration"] == "lightning"
    assert store.metrics(cb.run_id)["grad_norm"][1] == pytest.approx(values(ref, "grad_norm"))
    assert cb.report is not None and cb.report.exists()


def test_gradient_accumulation_is_one_monitor_step_per_optimizer_step():
    """accumulate_grad_batches=2 on batches of 4 = a plain loop on batches of 8 (the mean
    loss of equal-size micro-batches is the loss of their union; so is its gradient)."""
    cb = TrainlabCallback(probes=PROBES, every=1)
    trainer = fit(cb, 4, 4, accumulate_grad_batches=2)
    ref = plain_loop(4, 8)
    got = cb.monitor.history
    assert trainer.global_step == 4 and len(got["loss"]) == 4  # 8 batches -> 4 steps
    for name in ("loss", "grad_norm", "update_ratio"):
        assert values(got, name) == pytest.approx(values(ref, name), rel=1e-5), name


def test_probes_measure_before_clipping():
    """With gradient_clip_val the probes see the raw gradient (as the docstring says)."""
    cb = TrainlabCallback(probes="grad-norm", every=1)
    fit(cb, 3, 8, gradient_clip_val=0.05)
    ref = plain_loop(3, 8, clip=0.05)
    got = values(cb.monitor.history, "grad_norm")
    assert min(got) > 0.05  # not clipped when measured
    assert got == pytest.approx(values(ref, "grad_norm"), rel=1e-5)


def test_diverging_run_stops_and_is_marked(tmp_path):
    store = RunStore(tmp_path)
    cb = TrainlabCallback(probes="grad-norm", every=1, store=store, report=False)

    class Exploding(Regression):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss * (math.inf if self.global_step == 2 else 1.0)

    fit(cb, 6, 8, module=Exploding())
    assert store.get_run(cb.run_id).status == "diverged"
    assert [s for s, _ in cb.monitor.history["loss"]] == [0, 1, 2]


def test_curvature_probes_see_the_joined_micro_batches():
    """The sharpness of the accumulated step's loss (two micro-batches of 4, joined) equals the
    plain loop's on the batch of 8: ctx.batch is the whole batch the update used."""
    cb = TrainlabCallback(probes="sharpness", every=1, loss_fn=nn.functional.mse_loss)
    fit(cb, 2, 4, accumulate_grad_batches=2)
    x, y = data()
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    mon = Monitor(model, loss_fn=nn.functional.mse_loss, optimizer=opt, probes="sharpness",
                  every=1, total_steps=1)
    for k in range(2):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x[8 * k:8 * k + 8]), y[8 * k:8 * k + 8])
        loss.backward()
        mon.step(loss, (x[8 * k:8 * k + 8], y[8 * k:8 * k + 8]))
        opt.step()
    mon.finish()
    got = values(cb.monitor.history, "sharpness")
    assert got == pytest.approx(values(mon.history, "sharpness"), rel=1e-4)


def test_resuming_from_a_lightning_checkpoint_numbers_steps_from_there(tmp_path):
    """fit(ckpt_path=...) after one epoch of 4 updates: the new Monitor's steps are 4, 5 (a
    new run), and step 4 (the restored weights, the first batch of the next epoch) records
    what the uninterrupted run recorded there. (Later steps are not compared: Lightning's own
    resume does not continue bitwise, which is not the callback's doing.)"""
    whole = TrainlabCallback(probes=PROBES, every=1)
    fit(whole, 6, 8)
    first = TrainlabCallback(probes=PROBES, every=1)
    trainer = fit(first, 4, 8)
    trainer.save_checkpoint(tmp_path / "epoch.ckpt")
    resumed = TrainlabCallback(probes="grad-norm", every=1)
    x, y = data()
    pl.Trainer(accelerator="cpu", devices=1, max_steps=6, callbacks=[resumed],
               enable_progress_bar=False, logger=False, enable_checkpointing=False,
               enable_model_summary=False).fit(
        Regression(), DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False),
        ckpt_path=tmp_path / "epoch.ckpt")
    got = resumed.monitor.history
    assert [s for s, _ in got["loss"]] == [4, 5]
    for name in ("loss", "grad_norm"):
        assert values(got, name)[0] == pytest.approx(values(whole.monitor.history, name)[4],
                                                     rel=1e-5), name
