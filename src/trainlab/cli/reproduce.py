"""Reproduce papers' headline phenomena at CPU scale and check them against the paper.

Each phenomenon runs a small experiment through the public library and compares measured
numbers with the paper's claim (PASS/FAIL per check). Every run is recorded in the run store
(verdict, checks, runtime, figure), so ``list`` shows each phenomenon's last verdict per mode
and ``--all --from-store`` rebuilds the gallery page without rerunning. ``--all`` runs the
phenomena in a process pool (``--jobs N``) with a progress display and writes the gallery
(an index of verdicts, then per phenomenon: claim, the paper's figure beside ours, checks with
seeds and spread, runtime, scale-downs). The exit status is 0 only if every phenomenon run
(or read back) passed, 1 otherwise, 2 on bad arguments.

Each record also keeps the data the phenomenon's ``run()`` returned (per-seed numbers, curves;
JSON, :mod:`trainlab.store.json_codec`, capped at a few MB with a warning naming what was
left out). ``NAME --from-store --data`` prints it as JSON without rerunning; ``--from-store``
redraws each figure from it (``plot(data)``), and uses the stored PNG for records written
before data was kept; ``NAME --from-store --figure PATH`` writes the redrawn figure as PNG,
SVG or PDF.

Example:
    trainlab reproduce list
    trainlab reproduce saxe-sigmoids --quick
    trainlab reproduce --all --quick --jobs 2 --out gallery.html
    trainlab reproduce --all --from-store --out gallery.html
    trainlab reproduce saxe-sigmoids --quick --from-store --data > data.json
    trainlab reproduce saxe-sigmoids --quick --from-store --figure saxe.svg
    trainlab reproduce --all --quick --json
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from trainlab.cli._options import add_store, open_store, output_file
from trainlab.errors import ConfigError, check_choice, check_range
from trainlab.phenomena import PHENOMENA, Outcome
from trainlab.phenomena.records import Recorded, latest, read_data, record
from trainlab.store import json_codec

NAME = "reproduce"
HELP = "run the phenomena suite (reproduce list | NAME | --all) and check it against papers"
FIGURE_FORMATS = ("png", "svg", "pdf")

log = logging.getLogger("trainlab")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", metavar="NAME|list",
                        help="a phenomenon name, or 'list' to list them")
    parser.add_argument("--all", action="store_true", help="run every phenomenon")
    parser.add_argument("--quick", action="store_true",
                        help="the small setting (< 20 s each on 2 cores, used by the tests)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (default 0); with --from-store, read the newest "
                             "record run with this seed (default: the newest whatever its "
                             "seed)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="phenomena run at once, one process each (default 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per phenomenon (default 1: their models are "
                             "small, and on a shared or 2-core machine a second thread mostly "
                             "adds synchronisation; use --jobs to use more cores)")
    parser.add_argument("--from-store", action="store_true",
                        help="read the recorded verdicts (of NAME or --all) instead of "
                             "running; figures are redrawn from the recorded data")
    parser.add_argument("--data", action="store_true",
                        help="with NAME --from-store: print the data its recorded run "
                             "returned, as JSON")
    parser.add_argument("--figure", type=Path, default=None, metavar="PATH",
                        help="with NAME --from-store: write its figure, redrawn from the "
                             "recorded data, to PATH (.png, .svg or .pdf)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--out", type=Path, default=None,
                        help="HTML gallery path (default: reproduce.html with --all)")
    add_store(parser)


def _run_one(name: str, quick: bool, seed: int, threads: int, figure: bool
             ) -> tuple[dict[str, Any], bytes | None, str | None]:
    """Run one phenomenon (in a worker process or in this one) with ``threads`` torch
    threads: its outcome as JSON, its figure as PNG bytes and its data as JSON text. An
    exception becomes a FAIL carrying the error text (and no data)."""
    import torch

    before = torch.get_num_threads()  # restored: an in-process caller keeps its setting
    torch.set_num_threads(threads)
    try:
        return _reproduce(name, quick, seed, figure)
    finally:
        torch.set_num_threads(before)


def _reproduce(name: str, quick: bool, seed: int, figure: bool
               ) -> tuple[dict[str, Any], bytes | None, str | None]:
    phen = PHENOMENA.get(name)()
    try:
        outcome, data = phen.reproduce(quick=quick, seed=seed)
    except Exception as exc:  # a broken experiment is a FAIL, reported, not a crash
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Outcome(name, [], quick=quick, seed=seed, error=detail).to_json(), None, None
    png = None
    if figure:
        from trainlab.report.page import figure_png

        fig = phen.plot(data)
        png = figure_png(fig) if fig is not None else None
    return outcome.to_json(), png, _data_json(name, data)


def _data_json(name: str, data: Any) -> str | None:
    """``data`` as recorded JSON (:func:`trainlab.store.json_codec.dumps`); None, with a
    warning, where encoding it raises (the verdict is recorded all the same)."""
    try:
        return json_codec.dumps(data, what=f"reproduce {name}")
    except Exception as exc:
        log.warning("reproduce %s: its data is not recorded: encoding it raised %s: %s", name,
                    type(exc).__name__, exc)
        return None


def _print_outcome(outcome: Outcome) -> None:
    verdict = "PASS" if outcome.passed else "FAIL"
    print(f"{outcome.name}: {verdict} ({outcome.seconds:.1f} s, {outcome.mode})")
    if outcome.error:
        print(f"  [FAIL] raised: {outcome.error}")
    for c in outcome.checks + outcome.guard:
        mark = "ok  " if c.passed else "FAIL"
        spread = f" +- {c.spread:.2g} ({c.seeds} seeds)" if c.seeds > 1 else ""
        print(f"  [{mark}] {c.name}: {c.measured:.4g}{spread}  (paper/criterion: {c.expected})")


def _run_all(names: list[str], args: argparse.Namespace, figure: bool
             ) -> list[tuple[Outcome, bytes | None]]:
    """Run ``names`` (in parallel with ``--jobs`` > 1), recording each as it finishes."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    store = open_store(args)
    store.clean_orphans()  # folders of earlier reproduces killed before their transaction
    seed = 0 if args.seed is None else args.seed
    results: dict[str, tuple[Outcome, bytes | None]] = {}
    show = len(names) > 1 and not args.json
    progress = Progress(TextColumn("reproduce"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[last]}"), console=Console(stderr=True),
                        disable=not show)

    def done(payload: dict[str, Any], png: bytes | None, data: str | None) -> None:
        outcome = Outcome.from_json(payload)
        record(store, outcome, png, data)
        results[outcome.name] = (outcome, png)
        if show:
            progress.console.print(f"{outcome.name}: {'PASS' if outcome.passed else 'FAIL'} "
                                   f"({outcome.seconds:.1f} s)")
        elif not args.json:
            _print_outcome(outcome)
        progress.update(task, advance=1, last=outcome.name)

    with progress:
        task = progress.add_task("run", total=len(names), last="")
        if args.jobs == 1:
            for name in names:
                done(*_run_one(name, args.quick, seed, args.threads, figure))
        else:
            ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
            with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
                futures = [pool.submit(_run_one, n, args.quick, seed, args.threads, figure)
                           for n in names]
                for fut in as_completed(futures):
                    done(*fut.result())
    store.close()
    return [results[n] for n in names]


def _recorded(names: list[str], args: argparse.Namespace) -> list[Recorded]:
    """The newest record of each of ``names`` in this mode; a missing one is an error."""
    store = open_store(args)
    recorded = latest(store, seed=args.seed)
    store.close()
    mode = "quick" if args.quick else "full"
    missing = [n for n in names if (n, mode) not in recorded]
    if missing:
        with_seed = "" if args.seed is None else f" with seed {args.seed}"
        raise ConfigError(f"reproduce --from-store: no recorded {mode} verdict{with_seed} for "
                          f"{', '.join(missing)} in {store.root}; run them first")
    return [recorded[(n, mode)] for n in names]


def _recorded_data(args: argparse.Namespace, rec: Recorded) -> Any | None:
    """The decoded data of ``rec`` (None when it holds none)."""
    with open_store(args) as store:
        text = read_data(store, rec.run_id)
    return None if text is None else json_codec.loads(text)


def _redraw(rec: Recorded, data: Any) -> Any | None:
    """The phenomenon's figure drawn from its recorded ``data``, or None (with a warning)
    where the data lacks values left out when recorded, or plotting it raises."""
    name = rec.outcome.name
    left_out = json_codec.omitted(data)
    if left_out:
        log.warning("reproduce --from-store: the recorded data of %s lacks %s (left out when "
                    "it was recorded); its recorded figure is used", name, ", ".join(left_out))
        return None
    try:
        return PHENOMENA.get(name)().plot(data)
    except Exception as exc:
        log.warning("reproduce --from-store: %s could not be redrawn from its recorded data "
                    "(%s: %s); its recorded figure is used", name, type(exc).__name__, exc)
        return None


def _from_store(names: list[str], args: argparse.Namespace, redraw: bool
                ) -> list[tuple[Outcome, bytes | None]]:
    """The recorded outcomes with their figures: redrawn from the recorded data with
    ``redraw`` where there is data, else the stored PNG (with a warning naming the records
    that hold no data)."""
    from trainlab.report.page import figure_png

    out, no_data = [], []
    for rec in _recorded(names, args):
        png = rec.png
        data = _recorded_data(args, rec) if redraw else None
        if data is not None:
            fig = _redraw(rec, data)
            png = figure_png(fig) if fig is not None else png
        elif redraw and not rec.outcome.error:
            no_data.append(rec.outcome.name)
        out.append((rec.outcome, png))
    if no_data:
        log.warning("reproduce --from-store: %s recorded no data (recorded before data was "
                    "kept); their stored figures are used", ", ".join(no_data))
    return out


def _need_data(args: argparse.Namespace, rec: Recorded, option: str) -> str:
    """The JSON text of ``rec``'s data; a record without data is an error."""
    with open_store(args) as store:
        text = read_data(store, rec.run_id)
    if text is None:
        name, mode = rec.outcome.name, rec.outcome.mode
        raise ConfigError(f"reproduce {option}: the {mode} record of {name} (run {rec.run_id})"
                          f" holds no data (recorded before data was kept, or its run raised);"
                          f" rerun it: trainlab reproduce {name}"
                          f"{' --quick' if rec.outcome.quick else ''}")
    return text


def _print_data(rec: Recorded, args: argparse.Namespace) -> None:
    """``--data``: the record's data, in its recorded JSON form, with what it belongs to."""
    o = rec.outcome
    print(json.dumps({"name": o.name, "mode": o.mode, "seed": o.seed, "passed": o.passed,
                      "run_id": rec.run_id,
                      "data": json.loads(_need_data(args, rec, "--data"))}))


def _write_figure(rec: Recorded, path: Path, args: argparse.Namespace) -> None:
    """``--figure PATH``: the figure redrawn from the recorded data, in PATH's format."""
    fig = _redraw(rec, json_codec.loads(_need_data(args, rec, "--figure")))
    if fig is None:
        raise ConfigError(f"reproduce --figure: {rec.outcome.name} draws no figure from its "
                          f"recorded data (see the warning above)")
    import matplotlib.pyplot as plt

    fig.savefig(output_file(str(path), "--figure"), format=_figure_format(path),
                bbox_inches="tight")
    plt.close(fig)
    if not args.data:  # stdout is then the data's JSON alone
        print(f"figure: {path}")


def _figure_format(path: Path) -> str:
    fmt = path.suffix.lstrip(".").lower()
    check_choice("--figure format", fmt, FIGURE_FORMATS, owner="reproduce")
    return fmt


def _listing(args: argparse.Namespace) -> list[dict[str, Any]]:
    store = open_store(args)
    recorded = latest(store)
    store.close()
    rows = []
    for entry in PHENOMENA.entries():
        row: dict[str, Any] = {
            "name": entry.name, "papers": list(entry.papers), "summary": entry.summary,
            "claim": entry.obj.claim, "paper_figure": entry.obj.paper_figure,
            "reproduces": entry.info.reproduces}
        for mode in ("quick", "full"):
            rec = recorded.get((entry.name, mode))
            row[mode] = None if rec is None else {
                "passed": rec.outcome.passed, "seconds": round(rec.outcome.seconds, 3),
                "guard_passed": rec.outcome.guard_passed if rec.outcome.guard else None,
                "run_id": rec.run_id}
        rows.append(row)
    return rows


def _gallery(results: list[tuple[Outcome, bytes | None]], args: argparse.Namespace) -> Path:
    from trainlab.report.gallery import GalleryItem, build_gallery

    store = open_store(args)
    recorded = latest(store)
    store.close()
    items = [GalleryItem(PHENOMENA.get(o.name), o, png,
                         {m: rec.outcome for (n, m), rec in recorded.items() if n == o.name})
             for o, png in results]
    path = args.out or Path("reproduce.html")
    build_gallery(items, "quick" if args.quick else "full").write(path)
    return path


def main(args: argparse.Namespace) -> int:
    check_range("jobs", args.jobs, low=1, owner="reproduce")
    check_range("threads", args.threads, low=1, owner="reproduce")
    if args.target == "list":
        rows = _listing(args)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        def last(r: dict[str, Any] | None) -> str:
            if r is None:
                return "-"
            g = "" if r["guard_passed"] is None else (", guard ok" if r["guard_passed"]
                                                       else ", guard BROKEN")
            return f"{'PASS' if r['passed'] else 'FAIL'} {r['seconds']:.1f}s{g}"

        width = max([len(r["name"]) for r in rows] + [4])
        print(f"{'name':<{width}} {'rows':<6} {'quick':<22} {'full':<22} summary")
        for r in rows:
            print(f"{r['name']:<{width}} {','.join(map(str, r['papers'])):<6} "
                  f"{last(r['quick']):<22} {last(r['full']):<22} {r['summary']}")
        return 0
    if args.all == (args.target is not None):
        raise ConfigError("reproduce: give exactly one of NAME, 'list' or --all")
    one = args.target is not None
    for flag, given in (("--data", args.data), ("--figure", args.figure is not None)):
        if given and not (one and args.from_store):
            raise ConfigError(f"reproduce: {flag} goes with NAME --from-store")
    if args.figure is not None:
        _figure_format(args.figure)
    names = PHENOMENA.names() if args.all else [PHENOMENA.entry(args.target).name]
    gallery = bool(args.all or args.out)
    if args.data or args.figure is not None:
        rec = _recorded(names, args)[0]
        if args.figure is not None:
            _write_figure(rec, args.figure, args)
        if args.data:
            _print_data(rec, args)
        return 0 if rec.outcome.passed else 1
    results = (_from_store(names, args, redraw=gallery) if args.from_store
               else _run_all(names, args, figure=gallery))
    if args.json:
        out = [o.to_json() | {"papers": list(PHENOMENA.get(o.name).papers),
                              "claim": PHENOMENA.get(o.name).claim} for o, _ in results]
        print(json.dumps(out if args.all else out[0], indent=2))
    elif args.from_store:
        for o, _ in results:
            _print_outcome(o)
    if gallery:
        path = _gallery(results, args)
        if not args.json:
            passed = sum(o.passed for o, _ in results)
            print(f"{passed}/{len(results)} PASS; report: {path}")
    return 0 if all(o.passed for o, _ in results) else 1
