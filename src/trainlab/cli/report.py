"""Write the HTML report of one run, or a comparison of several runs.

Example:
    trainlab report latest
    trainlab report RUN_A RUN_B RUN_C -o comparison.html
"""

from __future__ import annotations

import argparse

from trainlab.cli._options import add_store, open_store, output_file

NAME = "report"
HELP = "HTML report of a run, or a comparison of runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="output file (default: the run's artifact folder for one run, "
                             "comparison.html for several)")
    add_store(parser)


def main(args: argparse.Namespace) -> int:
    from trainlab.report import write_comparison_report, write_run_report

    store = open_store(args)
    ids = [store.resolve(r) for r in args.runs]
    output = output_file(args.output) if args.output else None
    if len(ids) == 1:
        path = write_run_report(store, ids[0], output)
    else:
        path = write_comparison_report(store, ids, output or output_file("comparison.html"))
    print(path)
    return 0
