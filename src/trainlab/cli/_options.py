"""Options shared by several commands, written once."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError
from trainlab.store import RunStore
from trainlab.train.config import RunConfig, build_config, read_config_file

# flag -> RunConfig field, for the run options
RUN_FLAGS = {
    "task": str, "model": str, "init": str, "optim": str, "lr": float, "schedule": str,
    "steps": int, "batch_size": int, "probes": str, "every": int, "seed": int, "dtype": str,
    "z_loss": float, "checkpoint_every": int, "checkpoint_seconds": float,
    "flush_seconds": float, "name": str, "device": str,
}

FLAG_HELP = {
    "lr": "peak learning rate",
    "steps": "number of optimizer updates",
    "batch_size": "mini-batch size; 0 = full batch (gradient descent)",
    "probes": "probe and preset names, comma-separated; name@N sets a cadence "
              "(`trainlab list probes`; presets: none, economy, standard, full)",
    "every": "default probe cadence in steps",
    "seed": "fixes init, batch order and stochastic probes",
    "dtype": "float32 or float64",
    "device": "cpu, cuda, cuda:N, mps or auto",
    "z_loss": "output-logit z-loss coefficient (row 98; 1e-4 in the paper)",
    "checkpoint_every": "also write a resumable checkpoint every N steps (0: by time only)",
    "checkpoint_seconds": "write a resumable checkpoint every N seconds (0: off); a kill "
                          "loses at most this much training",
    "flush_seconds": "write metrics to the store at least every N seconds",
    "name": "a label for the run",
}


def add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="PATH",
                        help="run store directory (default: $TRAINLAB_STORE or ./trainlab-runs)")


def open_store(args: argparse.Namespace) -> RunStore:
    return RunStore(args.store)


def output_file(path: str, option: str = "-o") -> Path:
    """An output file path the command can write: not a directory, in an existing one."""
    out = Path(path)
    if not path or out.is_dir():
        raise ConfigError(f"{option} {path!r} is a directory or empty; give a file name")
    if not out.parent.is_dir():
        raise ConfigError(f"{option} {path!r}: the folder {str(out.parent)!r} does not exist")
    return out


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options that make a RunConfig: registry names are validated by the config,
    which lists the valid choices (``trainlab list ...``) with the closest match."""
    g = parser.add_argument_group("run configuration (override --config values)")
    g.add_argument("--config", metavar="FILE", help="YAML or JSON run config")
    from trainlab.registry import lookup

    defaults = RunConfig()
    kinds = {"task": "task", "model": "model", "init": "init", "optim": "optimizer",
             "schedule": "schedule"}
    for flag, typ in RUN_FLAGS.items():
        text = FLAG_HELP.get(flag, "")
        if flag in kinds:
            text = f"one of: {', '.join(lookup(kinds[flag]).names())}"
        g.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=typ, default=None,
                       metavar=typ.__name__.upper(),
                       help=f"{text} (default: {getattr(defaults, flag)!r})".lstrip())
    g.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a module that registers your own tasks, models, inits, "
                        "optimizers or probes before the config is checked (repeatable)")
    g.add_argument("-p", "--param", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="set a parameter, e.g. model.width=256, optim.weight_decay=0, "
                        "schedule.warmup=0, probe.sharpness.max_iter=50 (repeatable)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Defaults < --config file < flags < --param assignments."""
    if getattr(args, "imports", None):
        from trainlab.plugins import register_from_environment

        register_from_environment(args.imports)
    base = read_config_file(args.config) if getattr(args, "config", None) else {}
    flags = {k: getattr(args, k) for k in RUN_FLAGS if getattr(args, k, None) is not None}
    return build_config(base, flags, args.param)
