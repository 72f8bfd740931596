"""Attach trainlab to a PyTorch Lightning script: one callback gives the probes, the run
store, TensorBoard curves and the HTML report.

Run: python examples/lightning_callback.py [--steps 300] [--store DIR] [--tensorboard DIR]
"""

from __future__ import annotations

import argparse

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from trainlab.integrations.lightning import TrainlabCallback
from trainlab.tasks import build_task


class Classifier(pl.LightningModule):
    def __init__(self, inputs: int, classes: int):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(inputs, 128), torch.nn.ReLU(),
                                       torch.nn.Linear(128, classes))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=3e-3)


def main(argv: list[str] | None = None) -> TrainlabCallback:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--store", default="trainlab-runs")
    parser.add_argument("--tensorboard", default=None)
    args = parser.parse_args(argv)
    task = build_task("mnist1d")
    loader = DataLoader(TensorDataset(task.x_train, task.y_train), batch_size=128,
                        shuffle=True, generator=torch.Generator().manual_seed(0))
    cb = TrainlabCallback(probes="grad-norm,update-ratio,sharpness@50", every=10,
                          loss_fn=F.cross_entropy, store=args.store, name="lightning-example",
                          tensorboard=args.tensorboard)
    trainer = pl.Trainer(max_steps=args.steps, accumulate_grad_batches=2, callbacks=[cb],
                         accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Classifier(task.input_shape[0], task.num_outputs), loader)
    print(f"run {cb.run_id}: {cb.summary['status']}, final loss "
          f"{cb.summary['final_loss']:.4f}; report: {cb.report}")
    return cb


if __name__ == "__main__":
    main()
