"""Reproduce papers' headline phenomena at CPU scale and check them against the paper.

Each phenomenon runs a small experiment through the public library and compares measured
numbers with the paper's claim (PASS/FAIL per check). ``--all`` writes a gallery page (one
section per phenomenon: figure, claim, numbers, verdict). Some phenomena are registered as
known FAILs at CPU scale (``reproduces=False``, shown in ``reproduce list``); the exit status
is 0 when every verdict matches its registry entry and 1 otherwise.

Example:
    trainlab reproduce list
    trainlab reproduce saxe-sigmoids --quick
    trainlab reproduce --all --quick --out gallery.html
    trainlab reproduce --all --quick --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError
from trainlab.phenomena import PHENOMENA, Outcome, Phenomenon

NAME = "reproduce"
HELP = "run the phenomena suite (reproduce list | NAME | --all) and check it against papers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", metavar="NAME|list",
                        help="a phenomenon name, or 'list' to list them")
    parser.add_argument("--all", action="store_true", help="run every phenomenon")
    parser.add_argument("--quick", action="store_true",
                        help="the small setting (< 20 s each on 2 cores, used by CI)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--out", type=Path, default=None,
                        help="HTML report path (default: reproduce.html with --all)")


def _listing() -> list[dict[str, Any]]:
    rows = []
    for entry in PHENOMENA.entries():
        rows.append({"name": entry.name, "papers": list(entry.papers),
                     "summary": entry.summary, "claim": entry.obj.claim,
                     "reproduces": entry.info.reproduces})
    return rows


def _as_json(outcome: Outcome, phen: Phenomenon, quick: bool) -> dict[str, Any]:
    return {"name": outcome.name, "papers": list(phen.papers), "claim": phen.claim,
            "quick": quick, "passed": outcome.passed, "seconds": round(outcome.seconds, 3),
            "checks": [{"name": c.name, "measured": c.measured, "expected": c.expected,
                        "passed": c.passed} for c in outcome.checks]}


def _print_outcome(outcome: Outcome) -> None:
    verdict = "PASS" if outcome.passed else "FAIL"
    print(f"{outcome.name}: {verdict} ({outcome.seconds:.1f} s)")
    for c in outcome.checks:
        mark = "ok  " if c.passed else "FAIL"
        print(f"  [{mark}] {c.name}: {c.measured:.4g}  (paper/criterion: {c.expected})")


def _gallery(results: list[tuple[Phenomenon, Outcome, Any]], quick: bool) -> Any:
    from trainlab.papers import cite
    from trainlab.report import Page

    passed = sum(o.passed for _, o, _ in results)
    page = Page("trainlab phenomena gallery",
                f"{passed}/{len(results)} PASS, {'quick' if quick else 'full'} setting")
    page.table(["phenomenon", "papers.md rows", "verdict", "seconds"],
               [(p.name, ", ".join(map(str, p.papers)), "PASS" if o.passed else "FAIL",
                 f"{o.seconds:.1f}") for p, o, _ in results])
    for phen, outcome, fig in results:
        page.heading(f"{phen.name}: {'PASS' if outcome.passed else 'FAIL'}")
        refs = "; ".join(cite(r) for r in phen.papers)
        page.text(f"Claim: {phen.claim}")
        page.text(f"Paper: {refs}")
        if fig is not None:
            page.figure(fig, caption=phen.name)
        page.table(["check", "measured", "criterion", "verdict"],
                   [(c.name, f"{c.measured:.4g}", c.expected, "PASS" if c.passed else "FAIL")
                    for c in outcome.checks])
    return page


def main(args: argparse.Namespace) -> int:
    if args.target == "list":
        rows = _listing()
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for r in rows:
                flag = "" if r["reproduces"] else "  [known FAIL at CPU scale]"
                print(f"{r['name']:<24} rows {','.join(map(str, r['papers'])):<8} "
                      f"{r['summary']}{flag}")
        return 0
    if args.all == (args.target is not None):
        raise ConfigError("reproduce: give exactly one of NAME, 'list' or --all")
    names = PHENOMENA.names() if args.all else [PHENOMENA.entry(args.target).name]
    results = []
    for name in names:
        phen = PHENOMENA.get(name)()
        outcome, data = phen.reproduce(quick=args.quick, seed=args.seed)
        if not args.json:
            _print_outcome(outcome)
        fig = phen.plot(data) if (args.all or args.out) else None
        results.append((phen, outcome, fig))
    if args.json:
        out = [_as_json(o, p, args.quick) for p, o, _ in results]
        print(json.dumps(out if args.all else out[0], indent=2))
    if args.all or args.out:
        path = args.out or Path("reproduce.html")
        _gallery(results, args.quick).write(path)
        if not args.json:
            print(f"report: {path}")
    return 0 if all(o.passed == PHENOMENA.entry(p.name).info.reproduces
                    for p, o, _ in results) else 1
