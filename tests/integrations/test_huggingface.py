"""The transformers callback, run by a real ``transformers.Trainer`` on the CPU (a tiny GPT-2
built from a config, no download), against the Monitor in a plain loop."""

import copy
import inspect
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import transformers  # noqa: E402

from trainlab.integrations.huggingface import TrainlabCallback  # noqa: E402
from trainlab.store import RunStore  # noqa: E402
from trainlab.train import Monitor  # noqa: E402

PROBES = "grad-norm,update-ratio"

# transformers 5 samples in order with an argument; older releases (the only ones a torch
# older than 2.6 gets) through a Trainer whose train sampler is sequential
_HAS_STRATEGY = "train_sampling_strategy" in inspect.signature(
    transformers.TrainingArguments).parameters


def training_args(**kwargs):
    if _HAS_STRATEGY:
        kwargs["train_sampling_strategy"] = "sequential"
    return transformers.TrainingArguments(**kwargs)


class SequentialTrainer(transformers.Trainer):
    def _get_train_sampler(self, *args, **kwargs):
        if _HAS_STRATEGY:
            return super()._get_train_sampler(*args, **kwargs)
        return torch.utils.data.SequentialSampler(self.train_dataset)


def tiny_gpt2():
    cfg = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=16,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)  # the test's own draw: HF builds the weights from the global RNG
    model = transformers.GPT2LMHeadModel(cfg)
    # transformers names the loss after the class ("...ForCausalLM"); GPT2LMHeadModel has no
    # such name, so the Trainer would count the tokens of a step without the causal shift and
    # back-propagate sum/(n*L) instead of the mean over the n*(L-1) predicted tokens
    # (transformers < 5 always counts them so: dataset() masks each row's first label)
    model.loss_type = "ForCausalLM"
    return model


def dataset(n=16, length=8):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (n, length), generator=g)
    # the first label is never predicted (causal shift): -100 leaves n*(L-1) counted tokens
    # whether the Trainer counts before or after the shift
    labels = ids.clone()
    labels[:, 0] = -100
    return [{"input_ids": row, "labels": lab} for row, lab in zip(ids, labels)]


def hf_train(model, cb, tmp_path, steps, batch_size, accumulate=1, max_grad_norm=0.0):
    args = training_args(
        output_dir=str(tmp_path / "hf"), max_steps=steps, per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulate, max_grad_norm=max_grad_norm, report_to=[],
        use_cpu=True, save_strategy="no", logging_strategy="steps", logging_steps=1,
        disable_tqdm=True, dataloader_num_workers=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    trainer = SequentialTrainer(model=model, args=args, train_dataset=dataset(),
                                optimizers=(opt, sched), callbacks=[cb])
    trainer.train()
    return trainer


def plain_loop(model, steps, batch_size, max_grad_norm=0.0):
    rows = dataset()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    mon = Monitor(model, loss_fn=None, optimizer=opt, probes=PROBES, every=1,
                  total_steps=steps - 1)
    for k in range(steps):
        i = (k * batch_size) % len(rows)
        ids = torch.stack([r["input_ids"] for r in rows[i:i + batch_size]])
        labels = torch.stack([r["labels"] for r in rows[i:i + batch_size]])
        opt.zero_grad()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        mon.step(loss, None)
        opt.step()
    mon.finish()
    return mon.history


def values(history, name):
    return [v for _, v in history[name]]


def test_callback_records_what_a_plain_loop_records(tmp_path):
    model = tiny_gpt2()
    ref = plain_loop(copy.deepcopy(model), 4, 4)
    store = RunStore(tmp_path / "store")
    cb = TrainlabCallback(probes=PROBES, every=1, store=store, report=True)
    trainer = hf_train(model, cb, tmp_path, 4, 4)
    got = cb.monitor.history
    assert [s for s, _ in got["loss"]] == [0, 1, 2, 3]
    for name in ("loss", "grad_norm", "update_ratio"):
        assert values(got, name) == pytest.approx(values(ref, name), rel=1e-5), name
    rec = store.get_run(cb.run_id)
    assert rec.status == "completed" and rec.config["integration"] == "transformers"
    assert cb.report is not None and cb.report.exists()
    logged = [e for e in trainer.state.log_history if "loss" in e]  # HF's own loss per step
    assert values(got, "loss") == pytest.approx([float(e["loss"]) for e in logged], rel=1e-5)


def test_gradient_accumulation_is_one_monitor_step_per_optimizer_step(tmp_path):
    """Two micro-batches of 2 per step = a plain loop on batches of 4 (equal token counts)."""
    model = tiny_gpt2()
    ref = plain_loop(copy.deepcopy(model), 3, 4)
    cb = TrainlabCallback(probes=PROBES, every=1)
    trainer = hf_train(model, cb, tmp_path, 3, 2, accumulate=2)
    got = cb.monitor.history
    assert trainer.state.global_step == 3 and len(got["loss"]) == 3
    for name in ("loss", "grad_norm", "update_ratio"):
        assert values(got, name) == pytest.approx(values(ref, name), rel=1e-5), name


def test_probes_see_the_clipped_gradients(tmp_path):
    """The Trainer clips before on_pre_optimizer_step (as the module docstring says)."""
    model = tiny_gpt2()
    ref = plain_loop(copy.deepcopy(model), 2, 4, max_grad_norm=0.01)
    cb = TrainlabCallback(probes="grad-norm", every=1)
    hf_train(model, cb, tmp_path, 2, 4, max_grad_norm=0.01)
    got = values(cb.monitor.history, "grad_norm")
    assert got == pytest.approx([0.01, 0.01], rel=1e-4)
    assert values(cb.monitor.history, "loss") == pytest.approx(values(ref, "loss"), rel=1e-5)


class Regression(torch.nn.Module):
    """A model without loss kwargs: the Trainer divides each micro-batch's mean loss by the
    number of accumulation steps, and the callback averages the losses it sees."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.lin = torch.nn.Linear(4, 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(1, 4, generator=g))

    def forward(self, x, labels):
        out = self.lin(x)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


def test_accumulated_mean_losses_of_a_model_without_loss_kwargs(tmp_path):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 4, generator=g), torch.randn(8, 1, generator=g)
    rows = [{"x": a, "labels": b} for a, b in zip(x, y)]
    model = Regression()
    ref = copy.deepcopy(model)
    cb = TrainlabCallback(probes="grad-norm", every=1)
    args = training_args(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2,
        gradient_accumulation_steps=2, max_grad_norm=0.0, report_to=[], use_cpu=True,
        save_strategy="no", disable_tqdm=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    SequentialTrainer(model=model, args=args, train_dataset=rows, callbacks=[cb],
                      optimizers=(opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)),
                      ).train()
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    assert [s for s, _ in cb.monitor.history["grad_norm"]] == [0, 1]  # 4 batches, 2 steps
    want_loss, want_norm = [], []
    for k in range(2):
        ref_opt.zero_grad()
        loss = ref(x[4 * k:4 * k + 4], y[4 * k:4 * k + 4])["loss"]
        loss.backward()
        want_loss.append(loss.item())
        want_norm.append(torch.cat([p.grad.reshape(-1) for p in ref.parameters()]).norm().item())
        ref_opt.step()
    assert values(cb.monitor.history, "loss") == pytest.approx(want_loss, rel=1e-5)
    assert values(cb.monitor.history, "grad_norm") == pytest.approx(want_norm, rel=1e-5)
