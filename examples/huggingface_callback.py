"""Attach trainlab to a Hugging Face ``transformers.Trainer`` script: one callback gives the
probes, the run store, TensorBoard curves and the HTML report. A tiny GPT-2 is built from a
config (random weights, nothing downloaded) and trained on random token sequences.

Run: python examples/huggingface_callback.py [--steps 100] [--store DIR] [--tensorboard DIR]
"""

from __future__ import annotations

import argparse
import tempfile

import torch
import transformers

from trainlab.integrations.huggingface import TrainlabCallback


def main(steps: int = 100, store: str = "trainlab-runs", tensorboard: str | None = None
         ) -> TrainlabCallback:
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64,
                                     n_positions=32)
    model = transformers.GPT2LMHeadModel(config)
    model.loss_type = "ForCausalLM"  # the Trainer counts the shifted tokens (see the tests)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 64, (256, 16), generator=g)
    data = [{"input_ids": row, "labels": row.clone()} for row in ids]
    cb = TrainlabCallback(probes="grad-norm,update-ratio,weight-norm", every=10,
                          store=store, name="hf-example", tensorboard=tensorboard)
    with tempfile.TemporaryDirectory() as out:
        training = transformers.TrainingArguments(
            output_dir=out, max_steps=steps, per_device_train_batch_size=16,
            gradient_accumulation_steps=2, learning_rate=1e-3, report_to=[], use_cpu=True,
            save_strategy="no", logging_strategy="no", disable_tqdm=True)
        transformers.Trainer(model=model, args=training, train_dataset=data,
                             callbacks=[cb]).train()
    print(f"run {cb.run_id}: {cb.summary['status']}, final loss "
          f"{cb.summary['final_loss']:.4f}; report: {cb.report}")
    return cb


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, options in (("--steps", {"type": int, "default": 100}),
                          ("--store", {"default": "trainlab-runs"}), ("--tensorboard", {})):
        cli.add_argument(flag, **options)
    main(**vars(cli.parse_args()))
