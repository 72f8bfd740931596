"""Inspect and manage the run store: list runs, show one, export its metrics, remove runs.

Example:
    trainlab runs list
    trainlab runs show latest
    trainlab runs export latest --format csv -o metrics.csv
    trainlab runs export latest --format tensorboard -o tb/latest
    trainlab runs rm 20261128-101430-201ebf
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys

from trainlab.cli._options import add_json, add_store, open_store, output_file, print_json
from trainlab.errors import ConfigError
from trainlab.store import atomic_write_bytes

NAME = "runs"
HELP = "list, show, export or remove stored runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="one line per run")
    add_json(p)
    add_store(p)
    p = sub.add_parser("show", help="a run's config, status and summary")
    p.add_argument("run")
    add_json(p)
    add_store(p)
    p = sub.add_parser("export", help="a run's metrics in long form (step, name, value); "
                                      "JSON writes NaN and infinities as \"nan\", \"inf\", "
                                      "\"-inf\" (JSON has no such numbers)")
    p.add_argument("run")
    p.add_argument("--format", choices=("csv", "json", "tensorboard"), default="csv")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE instead of stdout (tensorboard: the event directory)")
    add_store(p)
    p = sub.add_parser("rm", help="remove runs with their metrics and artifacts")
    p.add_argument("run", nargs="+")
    add_store(p)


def _record_dict(r) -> dict:
    return {"id": r.id, "name": r.name, "status": r.status, "seed": r.seed,
            "created": r.created, "updated": r.updated, "config": r.config,
            "summary": r.summary, "versions": r.versions,
            "owner": None if r.lease is None else {"pid": r.lease.pid, "host": r.lease.host,
                                                   "heartbeat": r.lease.heartbeat}}


def _json_number(v: float) -> float | str:
    return v if math.isfinite(v) else str(v)


def main(args: argparse.Namespace) -> int:
    store = open_store(args)
    if args.action == "list":
        runs = store.list_runs()
        if args.json:
            print_json([_record_dict(r) for r in runs])
            return 0
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{len(runs)} runs in {store.root}")
        table.add_column("id", no_wrap=True)
        for col in ("name", "status", "task/model/init/optim", "steps", "final loss",
                    "test acc"):
            table.add_column(col, overflow="fold")
        for r in runs:
            c, s = r.config, r.summary
            what = "/".join(str(c.get(k, "-")) for k in ("task", "model", "init", "optim"))
            loss, acc = s.get("final_loss"), s.get("final_test_accuracy")
            table.add_row(r.id, "" if r.name == r.id else r.name, r.status, what,
                          str(s.get("steps", "")),
                          f"{loss:.4g}" if isinstance(loss, float) else "",
                          f"{acc:.3f}" if isinstance(acc, float) else "")
        Console().print(table)
        return 0
    if args.action == "show":
        r = store.get_run(store.resolve(args.run))
        d = _record_dict(r)
        d["artifacts"] = {k: str(v) for k, v in store.artifacts(r.id).items()}
        if args.json:
            print_json(d)
        else:
            import yaml

            print(yaml.safe_dump(d, sort_keys=False))
        return 0
    if args.action == "export":
        run_id = store.resolve(args.run)
        if args.format == "tensorboard":
            if not args.output:
                raise ConfigError("--format tensorboard needs -o DIR (the event directory)")
            from trainlab.integrations.tensorboard import export_run

            n = export_run(store, run_id, args.output)
            print(f"wrote {n} scalars of run {run_id} to {args.output}")
            return 0
        output = output_file(args.output) if args.output is not None else None
        rows = [(int(s), name, float(v)) for name, (steps, values) in
                store.metrics(run_id).items() for s, v in zip(steps, values)]
        rows.sort()
        if args.format == "json":
            text = json.dumps([{"step": s, "name": n, "value": _json_number(v)}
                               for s, n, v in rows], allow_nan=False)
        else:
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["step", "name", "value"])
            w.writerows(rows)
            text = buf.getvalue()
        if output is not None:
            atomic_write_bytes(output, text.encode("utf-8"))
        else:
            sys.stdout.write(text)
        return 0
    for ref in args.run:
        run_id = store.resolve(ref)
        record = store.get_run(run_id)
        if record.status == "running" and record.lease is not None:
            raise ConfigError(f"run {run_id} is running ({record.lease.describe()}); stop it "
                              f"before removing it")
        store.remove(run_id)
        print(f"removed {run_id}")
    return 0
