"""Train one model with probes on; record everything in the run store; write a report.

With no arguments: an MLP on MNIST-1D, orthogonal init, AdamW with warmup and linear decay
to zero (D2Z), the standard probes every 50 steps.

Example:
    trainlab run
    trainlab run --init lsuv --optim sgd --lr 0.05 -p optim.momentum=0.9 --steps 2000
    trainlab run --config run.yaml --seed 3
    trainlab run --resume latest
    trainlab run --steps 500 --tensorboard tb/run1      # then: tensorboard --logdir tb
    trainlab run --resume 20261128-101430-201ebf --take-over

Durability: metrics reach the store every few seconds (--flush-seconds, default 5) and a
checkpoint is written every few minutes (--checkpoint-seconds, default 300), on Ctrl-C and on
SIGTERM. A killed run shows as `crashed` in `trainlab runs list`; `--resume` continues it
from its last checkpoint. A run is owned by one process at a time: a second `--resume` of a
running run is refused; the owner's lease is taken over automatically when that process no
longer exists on this host, and with --take-over otherwise.
"""

from __future__ import annotations

import argparse
import sys

from trainlab.cli._options import (
    RUN_FLAGS,
    add_run_options,
    add_store,
    config_from_args,
    open_store,
)
from trainlab.errors import ConfigError

NAME = "run"
HELP = "train with probes on and write a report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_options(parser)
    add_store(parser)
    parser.add_argument("--resume", metavar="RUN",
                        help="continue an interrupted or crashed run (id, prefix, name or "
                             "'latest') with its stored configuration")
    parser.add_argument("--take-over", action="store_true",
                        help="with --resume: take the run from an owner that cannot be checked "
                             "from here (another host, or a pid that may have been reused)")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--tensorboard", metavar="DIR",
                        help="also write every metric to TensorBoard event files in DIR")


def print_summary(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"run {result.run_id}: {result.status}", show_header=False)
    for key, value in result.summary.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    if result.report:
        console.print(f"report: {result.report}")
    if result.status == "interrupted":
        console.print(f"interrupted; resume with: trainlab run --resume {result.run_id}"
                      + (f" --store {result.store}" if result.store else ""))


def _check_resume_flags(args: argparse.Namespace) -> None:
    """A resumed run keeps its stored configuration (its schedule, batches and checkpoint
    depend on it): configuration options next to --resume are an error, not ignored."""
    given = [f"--{k.replace('_', '-')}" for k in RUN_FLAGS if getattr(args, k) is not None]
    given += ["--config"] * bool(args.config) + ["-p"] * bool(args.param)
    if given:
        raise ConfigError(f"--resume continues a run with its stored configuration; "
                          f"{', '.join(given)} cannot change it (start a new run instead)")


def main(args: argparse.Namespace) -> int:
    from trainlab.train import Trainer

    store = open_store(args)
    progress = not args.quiet and sys.stderr.isatty()
    sinks = []
    if args.tensorboard:
        from trainlab.integrations.tensorboard import TensorBoardSink

        sinks.append(TensorBoardSink(args.tensorboard))
    if args.resume:
        _check_resume_flags(args)
        trainer = Trainer.resume(args.resume, store=store, progress=progress,
                                 report=not args.no_report, take_over=args.take_over,
                                 sinks=sinks)
    else:
        if args.take_over:
            raise ConfigError("--take-over only applies with --resume RUN")
        trainer = Trainer(config_from_args(args), store=store, progress=progress,
                          report=not args.no_report, sinks=sinks)
    result = trainer.run()
    print_summary(result)
    return {"completed": 0, "diverged": 0, "interrupted": 130}.get(result.status, 1)
