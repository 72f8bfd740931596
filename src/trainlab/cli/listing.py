"""List what trainlab offers, from its registries: inits, optimizers, schedules, probes,
tasks, models, activations, phenomena, PDE problems, learned linear solvers, diffusion
methods, and the 119 seed papers with the entries that implement each.

Example:
    trainlab list optimizers
    trainlab list papers --json
"""

from __future__ import annotations

import argparse

from trainlab.cli._options import add_json, print_json
from trainlab.errors import UnknownNameError

NAME = "list"
HELP = "list registry entries (inits, optimizers, ..., papers)"

# plural -> registry kind
WHAT = {"inits": "init", "optimizers": "optimizer", "schedules": "schedule", "probes": "probe",
        "tasks": "task", "models": "model", "activations": "activation",
        "phenomena": "phenomenon", "analyses": "analysis",
        "estimators": "estimator", "procedures": "procedure",
        "theory": "theory", "transforms": "transform", "problems": "problem",
        "diffusion": "diffusion", "minimax": "minimax", "bilevel": "bilevel",
        "solvers": "solver"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", help=f"one of: {', '.join([*WHAT, 'papers'])}")
    add_json(parser)


def _papers(as_json: bool) -> int:
    from trainlab.papers import papers
    from trainlab.registry import all_registries

    by_row: dict[int, list[str]] = {}
    for kind, reg in all_registries().items():
        for e in reg.entries():
            for row in e.papers:
                by_row.setdefault(row, []).append(f"{kind}:{e.name}")
    rows = [{"row": p.row, "title": p.title, "pillars": list(p.pillars),
             "entries": by_row.get(p.row, [])} for p in papers()]
    if as_json:
        print_json(rows)
        return 0
    from rich.console import Console
    from rich.table import Table

    covered = sum(bool(r["entries"]) for r in rows)
    table = Table(title=f"papers.md: {covered} of {len(rows)} rows have a registry entry")
    for col in ("#", "paper", "pillar", "entries"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["row"]), r["title"], ", ".join(r["pillars"]),
                      ", ".join(r["entries"]) or "-")
    Console().print(table)
    return 0


def main(args: argparse.Namespace) -> int:
    if args.what == "papers":
        return _papers(args.json)
    if args.what not in WHAT:
        raise UnknownNameError("list target", args.what, [*WHAT, "papers"])
    from trainlab.registry import lookup

    entries = lookup(WHAT[args.what]).entries()
    if args.json:
        print_json([{"name": e.name, "summary": e.summary, "papers": list(e.papers),
                     "flags": e.flags} for e in entries])
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(entries)} {args.what}")
    for col in ("name", "summary", "papers.md rows"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(e.name, e.summary, ", ".join(map(str, e.papers)) or "-")
    Console().print(table)
    return 0
