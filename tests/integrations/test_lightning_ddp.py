"""The Lightning callback under data parallelism: a real ``lightning.Trainer(strategy="ddp",
accelerator="cpu", devices=2)`` on gloo, its two processes started as torchrun starts them
(``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set: Lightning then launches nothing itself), records
the numbers of one process on the global batch; only rank 0 writes the store.

The ``ranks`` fixture forks the two processes and fails the test after a timeout instead of
hanging."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from _plain_loop import plain_loop
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from trainlab.integrations.lightning import TrainlabCallback
from trainlab.store import RunStore

pytestmark = pytest.mark.filterwarnings(
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning")

PROBES = "grad-norm,update-ratio,sharpness"  # replicated and reduced (averaged HVPs)
STEPS, GLOBAL_BATCH = 3, 8


def data():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(STEPS * GLOBAL_BATCH, 5, generator=g)
    return x, torch.sin(x.sum(1, keepdim=True))


def net():
    torch.manual_seed(0)  # the test's own draw
    return nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 1))


class Module(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = net()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.mse_loss(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def _rank(root: str, results) -> None:
    x, y = data()
    # each rank's shard in a known order (Lightning's own DistributedSampler shuffles, with
    # use_distributed_sampler=True): rank r takes examples r, r + 2, ... so that each step's
    # global batch is 8 consecutive examples
    ds = TensorDataset(x, y)
    loader = DataLoader(ds, batch_size=GLOBAL_BATCH // 2, sampler=DistributedSampler(
        ds, num_replicas=2, rank=dist.get_rank(), shuffle=False))
    cb = TrainlabCallback(probes=PROBES, every=1, loss_fn=nn.functional.mse_loss,
                          store=root, report=True)
    trainer = pl.Trainer(strategy="ddp", accelerator="cpu", devices=2, max_steps=STEPS,
                         callbacks=[cb], enable_progress_bar=False, logger=False,
                         enable_checkpointing=False, enable_model_summary=False,
                         use_distributed_sampler=False)
    trainer.fit(Module(), loader)
    results.put((dist.get_rank(), trainer.world_size,
                 {k: [v for _, v in h] for k, h in cb.monitor.history.items()}, cb.run_id,
                 cb.report is not None))


def test_lightning_ddp_on_2_processes_records_the_global_batch(tmp_path, ranks):
    results = mp.get_context("fork").SimpleQueue()
    ranks(_rank, str(tmp_path / "store"), results, timeout=90)
    (_, w0, h0, run0, report0), (_, w1, h1, run1, report1) = sorted(
        results.get() for _ in range(2))
    assert w0 == w1 == 2
    assert run0 is not None and run1 is None and report0 and not report1
    assert [r.id for r in RunStore(tmp_path / "store").list_runs()] == [run0]
    # one process, the same model and optimizer, on the global batches
    ref = plain_loop(net(), *data(), STEPS, GLOBAL_BATCH, PROBES)
    for name in ("loss", "grad_norm", "update_ratio", "sharpness"):
        want = [v for _, v in ref[name]]
        assert len(want) >= STEPS - 1, name  # (update-ratio: from the second step)
        assert h0[name] == h1[name], name  # the same global numbers on both ranks
        assert h0[name] == pytest.approx(want, rel=1e-5), name
