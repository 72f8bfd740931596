"""Run a grid of configurations (one process per core) and write a comparison report.

Every axis is ``KEY=V1,V2,...`` with keys as in ``--param`` (``init``, ``lr``,
``model.width``, ...); the base configuration comes from the usual run options.

Example:
    trainlab compare --grid init=orthogonal,lsuv optim=adamw,sgd --steps 1000
    trainlab compare --grid lr=0.001,0.003,0.01 --processes 2 -o lr-sweep.html
    trainlab compare --grid seed=0,1,2,3 --executor ray               # a local Ray
    trainlab compare --grid seed=0,1,2,3 --executor ray --address ray://head:10001
"""

from __future__ import annotations

import argparse

from trainlab.cli._options import (
    add_run_options,
    add_store,
    config_from_args,
    open_store,
    output_file,
)
from trainlab.errors import ConfigError, check_range

NAME = "compare"
HELP = "run a grid of configurations and compare them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2",
                        help="grid axes; the runs are their cartesian product")
    parser.add_argument("--processes", type=int, default=None,
                        help="worker processes (default: one per core)")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local: worker processes here; ray: one Ray task per point, "
                             "the store written here (default: local)")
    parser.add_argument("--address", metavar="ADDR",
                        help="Ray cluster address (with --executor ray; default: a local Ray)")
    parser.add_argument("-o", "--output", default="comparison.html", metavar="FILE")
    add_run_options(parser)
    add_store(parser)


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from trainlab.report import write_comparison_report
    from trainlab.train.grid import LocalExecutor, expand_grid, parse_grid, run_grid

    store = open_store(args)
    if args.processes is not None:
        check_range("--processes", args.processes, low=1, owner="compare")
    output = output_file(args.output)
    configs = expand_grid(config_from_args(args), parse_grid(args.grid))
    console = Console()
    console.print(f"running {len(configs)} configurations")
    if args.address and args.executor != "ray":
        raise ConfigError("--address is the Ray cluster's address: use it with --executor ray")
    if args.executor == "ray":
        from trainlab.integrations.ray import RayExecutor

        executor = RayExecutor(args.address, num_cpus=args.processes)
    else:
        executor = LocalExecutor(args.processes)
    results = run_grid(configs, store.root, executor)
    for (run_id, status), cfg in zip(results, configs):
        console.print(f"  {cfg.name}: {status} ({run_id})")
    path = write_comparison_report(store, [r for r, _ in results], output)
    console.print(f"comparison report: {path}")
    return 0
