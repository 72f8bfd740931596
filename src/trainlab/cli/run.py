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
    trainlab run --nproc 2 --batch-size 128      # data-parallel (DDP), 2 processes on gloo
    trainlab run --nproc 2 --resume latest       # continue it, again in 2 processes
    torchrun --nproc-per-node 4 -m trainlab run  # the same, started by torchrun

Durability: metrics reach the store every few seconds (--flush-seconds, default 5) and a
checkpoint is written every few minutes (--checkpoint-seconds, default 300), on Ctrl-C and on
SIGTERM. A killed run shows as `crashed` in `trainlab runs list`; `--resume` continues it
from its last checkpoint. A run is owned by one process at a time: a second `--resume` of a
running run is refused; the owner's lease is taken over automatically when that process no
longer exists on this host, and with --take-over otherwise.

Data-parallel: `--nproc N` starts N processes on this host (gloo on the CPU; nccl with
`--device cuda`, one GPU each; each trains on its share of every batch through
DistributedDataParallel) unless the command already runs under
torchrun (RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR set), whose process group it joins (nccl
with CUDA, else gloo). The recorded numbers are those of one process on the global batch;
rank 0 writes the store and the report (trainlab.train.distributed). `--resume RUN`
continues a run in as many processes as given (rank 0 reads the checkpoint and sends it to
the others; each rank takes back its own RNG state).
"""

from __future__ import annotations

import argparse
import os
import sys

from trainlab.cli._options import (
    RUN_FLAGS,
    add_run_options,
    add_store,
    config_from_args,
    open_store,
)
from trainlab.errors import ConfigError, TrainlabError

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
    parser.add_argument("--nproc", type=int, metavar="N",
                        help="data-parallel training in N processes on this host (gloo); "
                             "under torchrun the launcher's processes are used instead")


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
    from trainlab.train import distributed

    if distributed.launched_by_torchrun():
        world = int(os.environ["WORLD_SIZE"])
        if args.nproc not in (None, world):
            raise ConfigError(f"--nproc {args.nproc} under torchrun, which started {world} "
                              f"processes; leave --nproc out")
        dist = distributed.init_from_env()
        result = _train(args, main_rank=dist is None or dist.is_main)
        return _finish(result) if dist is None or dist.is_main else 0
    if args.nproc is not None and args.nproc != 1:
        from trainlab.errors import check_range

        check_range("nproc", args.nproc, low=1, owner="trainlab run")
        cfg = _parent_config(args)  # a bad config fails here, once, not in every process
        if cfg.batch_size and cfg.batch_size % args.nproc:
            raise ConfigError(f"--batch-size {cfg.batch_size} does not divide among "
                              f"--nproc {args.nproc} processes; choose a multiple of "
                              f"{args.nproc}")
        import torch.multiprocessing as mp
        from torch.multiprocessing.spawn import ProcessException

        results = mp.get_context(distributed.START_METHOD).SimpleQueue()
        try:
            distributed.spawn(_rank_main, args.nproc, args, results,
                              backend=_backend(cfg.device, args.nproc))
        except ProcessException as exc:  # the rank's exception (its traceback's last line)
            lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
            raise TrainlabError(f"a data-parallel process failed: {lines[-1].strip()}"
                                ) from None
        return _finish(results.get())
    return _finish(_train(args, main_rank=True))


def _backend(device: str, nproc: int) -> str:
    """nccl with one GPU per process for a CUDA run, else gloo."""
    if not device.startswith("cuda"):
        return "gloo"
    import torch

    if device != "cuda" or torch.cuda.device_count() < nproc:
        raise ConfigError(f"--nproc {nproc} with --device {device}: give --device cuda with "
                          f"at least {nproc} GPUs (process r uses cuda:r; this host has "
                          f"{torch.cuda.device_count()}), or use torchrun")
    return "nccl"


def _parent_config(args: argparse.Namespace):
    """The configuration the processes of `--nproc N` will train: the stored one of the
    run given to --resume (checked here, once), else the one from the options."""
    if not args.resume:
        return config_from_args(args)
    from trainlab.train import RunConfig

    _check_resume_flags(args)
    store = open_store(args)
    try:
        return RunConfig.from_dict(store.get_run(store.resolve(args.resume)).config)
    finally:
        store.close()  # the processes open their own


def _rank_main(args: argparse.Namespace, results) -> None:
    """One process of `trainlab run --nproc N` (the process group is set up)."""
    from trainlab.train import distributed

    main_rank = distributed.current().is_main
    result = _train(args, main_rank=main_rank)
    if main_rank:
        results.put(result)


def _finish(result) -> int:
    print_summary(result)
    return {"completed": 0, "diverged": 0, "interrupted": 130}.get(result.status, 1)


def _train(args: argparse.Namespace, *, main_rank: bool):
    from trainlab.train import Trainer

    store = open_store(args)
    progress = not args.quiet and sys.stderr.isatty() and main_rank
    sinks = []
    if args.tensorboard and main_rank:
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
    return trainer.run()
