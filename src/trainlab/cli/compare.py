"""Run a grid of configurations (one process per core) and write a comparison report.

Every axis is ``KEY=V1,V2,...`` with keys as in ``--param`` (``init``, ``lr``,
``model.width``, ...); the base configuration comes from the usual run options.

Example:
    trainlab compare --grid init=orthogonal,lsuv optim=adamw,sgd --steps 1000
    trainlab compare --grid lr=0.001,0.003,0.01 --processes 2 -o lr-sweep.html
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
from trainlab.errors import check_range

NAME = "compare"
HELP = "run a grid of configurations and compare them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2",
                        help="grid axes; the runs are their cartesian product")
    parser.add_argument("--processes", type=int, default=None,
                        help="worker processes (default: one per core)")
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
    results = run_grid(configs, store.root, LocalExecutor(args.processes))
    for (run_id, status), cfg in zip(results, configs):
        console.print(f"  {cfg.name}: {status} ({run_id})")
    path = write_comparison_report(store, [r for r, _ in results], output)
    console.print(f"comparison report: {path}")
    return 0
