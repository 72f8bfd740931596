"""The evaluation probe's chunk (examples per forward pass) changes its speed, not its numbers
(issue 18's rule: a stated tolerance, checked here)."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.models import build_model
from trainlab.probes import ProbeContext
from trainlab.probes.evaluation import Evaluation
from trainlab.tasks import build_task


def test_metrics_do_not_depend_on_the_chunk():
    task = build_task("mnist1d", num_samples=1500)  # 1200 train, 300 test
    torch.manual_seed(0)
    model = build_model("mlp", tuple(task.x_train.shape[1:]), task.num_outputs)
    ctx = ProbeContext(step=0, model=model, loss_fn=task.loss, batch=None,
                       loss=torch.tensor(0.0), optimizer=None, lr=None, init_params={},
                       prev_params=None, task=task)
    whole = {k: v.item() for k, v in Evaluation(chunk=10**9).measure(ctx).items()}
    assert set(whole) == {"train/loss", "train/accuracy", "test/loss", "test/accuracy"}
    # the default, a chunk that does not divide the sets, and a small one
    for chunk in (Evaluation().chunk, 999, 100):
        out = {k: v.item() for k, v in Evaluation(chunk=chunk).measure(ctx).items()}
        for k, v in whole.items():
            assert out[k] == pytest.approx(v, rel=1e-6, abs=0.0), (chunk, k)
    # the metrics are those of the whole set: the loss of the joined logits
    with torch.inference_mode():
        ref = task.loss(model(task.x_test), task.y_test).item()
    assert whole["test/loss"] == pytest.approx(ref, rel=1e-6)
    assert model.training  # the caller's mode is given back


def test_bad_chunk_is_refused():
    with pytest.raises(ConfigError, match="chunk"):
        Evaluation(chunk=0)
