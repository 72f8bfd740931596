"""Tutorial: reproduce a paper's phenomenon and read its verdict.

A phenomenon is a paper's headline claim written as an experiment that checks itself
(``trainlab list phenomena``). ``saxe-sigmoids``: in deep linear networks trained from a
small init, each mode of the input-output map is learned along a sigmoid in time, the
strongest first ("Exact solutions to the nonlinear dynamics of learning in deep linear
neural networks", Saxe, McClelland & Ganguli 2014; ``trainlab list papers`` gives its row).
The quick mode is the claim at CPU scale in seconds; the full mode is the paper's setting.

Run: python examples/reproduce_phenomenon.py [--name saxe-sigmoids] [--store DIR] [--full]
The same from the command line:
    trainlab reproduce saxe-sigmoids --quick
    trainlab reproduce list                # the last verdict of every phenomenon
"""

from __future__ import annotations

import argparse

import torch

from trainlab.papers import paper
from trainlab.phenomena import PHENOMENA
from trainlab.phenomena.records import record
from trainlab.store import RunStore


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="saxe-sigmoids")
    parser.add_argument("--store", default="trainlab-runs")
    parser.add_argument("--full", action="store_true", help="the paper's setting (minutes)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    entry = PHENOMENA.entry(args.name)
    for row in entry.papers:
        print(f"papers.md row {row}: {paper(row).title}")
    phenomenon = entry.obj()
    outcome, data = phenomenon.reproduce(quick=not args.full)
    for check in outcome.checks:
        print(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: measured "
              f"{check.measured:.4g}, the paper's claim: {check.expected}")
    print(f"{args.name} ({outcome.mode}): {'PASS' if outcome.passed else 'FAIL'} in "
          f"{outcome.seconds:.1f} s")
    del data  # the run's raw output, for phenomenon.plot(data)
    run_id = record(RunStore(args.store), outcome)
    print(f"recorded as run {run_id} (trainlab reproduce list shows it)")
    return outcome


if __name__ == "__main__":
    main()
