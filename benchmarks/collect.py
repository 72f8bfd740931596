"""Run every benchmark script and write ``docs/performance.md``: the machine, the torch
version, the date, each headline figure as a ratio to its in-process reference, and every
script's full printout under the command that produced it.

``make bench`` runs this. Each script runs in its own process with one thread; its JSON
output (written to a temporary folder) gives the figures of the summary table. A script that
fails or runs past ``--timeout`` is reported as such in the document (never silently left
out). Cockpit's comparison needs its own environment (``make bench-cockpit``) and is not run
here.

Usage: python benchmarks/collect.py [--quick] [--out docs/performance.md] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
Figure = tuple[str, float | None, str]  # label, ratio, target (or "")


@dataclass(frozen=True)
class Bench:
    """One benchmark script: its arguments (full and ``--quick``), where it writes JSON
    (``{json}`` in the arguments), and the figures read from that JSON."""

    script: str
    args: tuple[str, ...]
    quick: tuple[str, ...]
    figures: Callable[[dict], list[Figure]]
    note: str = ""


def _trainer(d: dict) -> list[Figure]:
    r = d["ratios"]
    out = [("Trainer, probes off / plain loop", r["probes_off_over_plain"], "<= 1.02"),
           ("Trainer, standard probes every 50 steps / probes off",
            r.get("standard_every_50_over_probes_off"), "<= 1.15")]
    if "standard_sparse_over_probes_off" in r:
        out.append(("Trainer, standard probes every 50 steps, eval and sharpness every 200 "
                    "(`standard,eval@200,sharpness@200`) / probes off",
                    r["standard_sparse_over_probes_off"], ""))
    for name, steps in sorted(d.get("probe_steps_per_measurement", {}).items()):
        out.append((f"`{name}` probe, cost per measurement / one training step", steps,
                    "<= 50 (eval)" if name == "eval" else ""))
    return out


def _probe_overhead(d: dict) -> list[Figure]:
    res = d["results"]
    targets = {"economy@1": "<= 1.5", "economy@16": "<= 1.1"}
    return [(f"`{k}` / untracked loop", v["ratio"], targets.get(k, ""))
            for k, v in res.items() if k != "untracked"]


def _curvature(d: dict) -> list[Figure]:
    out = []
    for r in d["results"]:
        p = f"{r['problem']} (batch {r['batch']})"
        out += [(f"{p}: HVP / gradient, fresh product, default method", r["hvp_over_grad"],
                 "<= 2.5"),
                (f"{p}: HVP / gradient, retained graph", r["hvp_retained_over_grad"], ""),
                (f"{p}: retained-graph memory / plain gradient graph",
                 r["retained_graph_memory_over_gradient"], ""),
                (f"{p}: top eigenvalue, PyHessian HVPs / ours", r["hvp_ratio"], ""),
                (f"{p}: top eigenvalue, PyHessian time / ours", r["time_ratio"], "")]
    return out


def _hvp_memory(d: dict) -> list[Figure]:
    out = []
    for r in d["rows"]:
        p = f"{r['problem']} (batch {r['batch']})"
        out += [(f"{p}: peak memory, first retained-graph HVP / plain gradient",
                 r["retained_first_peak_over_gradient"], ""),
                (f"{p}: peak memory, later retained-graph HVP / plain gradient",
                 r["retained_later_peak_over_gradient"], ""),
                (f"{p}: memory kept between HVPs / plain gradient's peak",
                 r["retained_held_over_gradient"], ""),
                (f"{p}: budget's count of the kept graph / measured",
                 r["budget_estimate_over_held"], "1")]
    return out


def _sharpness(d: dict) -> list[Figure]:
    s = d["summary"]
    return [(f"sharpness every {d['every']} steps: HVPs per warm-started measurement (median)",
             s["probe_hvps_median"], "<= 5"),
            ("sharpness: fewest HVPs to 1e-3 from the warm start (oracle, median)",
             s["oracle_warm_median"], ""),
            ("sharpness: largest relative error of the probe's value (vs cold, converged)",
             s["probe_rel_err_max"], "<= 1e-3")]


def _scaling(d: dict) -> list[Figure]:
    big = max(d["by_width"], key=lambda r: r["params"])
    sl = d["slopes"]
    return [(f"`economy@1` / untracked loop at {big['params'] / 1e6:.1f}M parameters",
             big["ratio"], "<= 1.5"),
            ("log-log slope: economy's extra time vs parameters", sl["extra_ms_vs_params"],
             "<= step's slope"),
            ("log-log slope: untracked step time vs parameters", sl["step_ms_vs_params"], ""),
            ("log-log slope: Lanczos (20 HVPs) time vs parameters", sl["lanczos_vs_params"],
             "")]


SCALING_NOTE = (
    "![probe cost against model and batch size](performance_scaling.png)\n\n"
    "Reading it: economy's extra time per step grows in proportion to the parameter count "
    "(slope near 1) and hardly with the batch (slope near 0.2), so it is per-parameter work "
    "(the snapshots and norms of weights, updates and gradients that distance-from-init, "
    "update size and the gradient statistics take over every parameter at every step), not "
    "per-sample work. The step itself grows more slowly than the parameter count at small "
    "widths (fixed Python cost per step) and at batch 128 is cheap per parameter, so the ratio "
    "rises with the model and falls with the batch. The Lanczos estimate costs a roughly "
    "fixed number of gradients per HVP that grows slowly with the model (memory traffic of "
    "double backward).")


def _optim_step(d: dict) -> list[Figure]:
    out: list[Figure] = []
    for row in d["rows"]:
        fused = "fused" in row["method"]
        floor = f" (traffic floor {row['floor']:.2f})" if fused and "floor" in row else ""
        out.append((f"{row['method']}, {row['layout']} / fused AdamW{floor}",
                    row["ratio_to_fused_adamw"], "<= 1.5" if fused else ""))
        if fused and "copy_GB/s" in row:
            out.append((f"{row['method']}, {row['layout']}: achieved GB/s / copy GB/s "
                        f"({row['copy_GB/s']:.1f} GB/s, same run)",
                        row["GB/s"] / row["copy_GB/s"], ""))
    return out


def _first_step(d: dict) -> list[Figure]:
    out: list[Figure] = []
    for r in d["rows"]:
        target = "" if r["method"].startswith("torch-") else "<= 2 s"
        out += [(f"{r['method']}: first step in a new process, warm cache (s)",
                 r["warm_first_step_s"], target),
                (f"{r['method']}: first step in a new process, cold cache (s)",
                 r["cold"]["first_step_s"], ""),
                (f"{r['method']}: optimizer construction in a new process (s)",
                 r["warm_build_s"], "")]
        if "warm_total_s" in r:
            out.append((f"{r['method']}: import + construction + first step, new process, "
                        f"warm cache (s)", r["warm_total_s"], ""))
    return out


def _fused_replay(d: dict) -> list[Figure]:
    out: list[Figure] = []
    for r in d["rows"]:
        out += [(f"{r['method']} (fused), {r['layout']}, kernels replayed / fused AdamW",
                 r["replay_ratio"], "<= 1.5"),
                (f"{r['method']} (fused), {r['layout']}, precompiled function / fused AdamW",
                 r["precompiled_ratio"], "")]
    return out


BENCHES: dict[str, Bench] = {
    "trainer_overhead": Bench("trainer_overhead.py",
                              ("--steps", "2000", "--reps", "3", "--clock", "process",
                               "--out", "{json}"),
                              ("--steps", "300", "--reps", "2", "--clock", "process",
                               "--out", "{json}"), _trainer),
    "probe_overhead": Bench("probe_overhead.py",
                            ("--steps", "512", "--repeats", "3", "--clock", "process",
                             "--json", "{json}"),
                            ("--steps", "64", "--repeats", "2", "--clock", "process",
                             "--json", "{json}"), _probe_overhead),
    "curvature": Bench("curvature.py", ("--reps", "3", "--json", "{json}"),
                       ("--reps", "1", "--only", "mnist1d", "--budgets", "30",
                        "--json", "{json}"), _curvature),
    "hvp_memory": Bench("hvp_memory.py", ("--json", "{json}"),
                        ("--problems", "mnist1d:256", "--json", "{json}"), _hvp_memory),
    "sharpness_warm": Bench("sharpness_warm.py", ("--steps", "300", "--out", "{json}"),
                            ("--steps", "100", "--out", "{json}"), _sharpness),
    "probe_scaling": Bench("probe_scaling.py",
                           ("--png", str(HERE.parent / "docs" / "performance_scaling.png"),
                            "--json", "{json}"),
                           ("--widths", "128", "256", "--batches", "32", "128",
                            "--batch-width", "128", "--steps", "8", "--rounds", "1",
                            "--json", "{json}"), _scaling, SCALING_NOTE),
    "optim_step": Bench("optim_step.py", ("--threads", "1", "--json", "{json}"),
                        ("--threads", "1", "--reps", "1", "--methods", "ademamix",
                         "--layouts", "few", "--json", "{json}"), _optim_step),
    "fused_replay": Bench("fused_replay.py", ("--json", "{json}"),
                          ("--methods", "ademamix", "--tensors", "50", "--reps", "2",
                           "--json", "{json}"), _fused_replay),
    "first_step": Bench("first_step.py", ("--warm", "5", "--json", "{json}"),
                        ("--methods", "ademamix", "--warm", "1", "--json", "{json}"),
                        _first_step),
}


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:  # no /proc (not Linux): platform's name above is what we have
        pass
    import torch  # the benchmarks' own torch, for the version line

    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "torch": torch.__version__, "system": f"{platform.system()} {platform.release()}",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": " / ".join(f"{x:.1f}" for x in os.getloadavg())}


def run_one(name: str, bench: Bench, quick: bool, tmp: Path, timeout: float
            ) -> dict:
    """Run one script; returns its command, printout, status and figures."""
    path = tmp / f"{name}.json"
    args = [a.replace("{json}", str(path)) for a in (bench.quick if quick else bench.args)]
    cmd = [sys.executable, str(HERE / bench.script), *args]
    shown = " ".join(["python", f"benchmarks/{bench.script}",
                      *[a if a != str(path) else f"/tmp/{name}.json" for a in args]])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return {"command": shown, "status": f"timed out after {timeout:.0f} s",
                "output": out, "figures": []}
    status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    output = proc.stdout + (("\n" + proc.stderr[-2000:]) if proc.returncode else "")
    figures: list[Figure] = []
    if proc.returncode == 0 and path.exists():
        try:
            figures = bench.figures(json.loads(path.read_text()))
        except (KeyError, TypeError, ValueError) as exc:
            status = f"ok, but its JSON could not be read ({type(exc).__name__}: {exc})"
    return {"command": shown, "status": status, "output": output, "figures": figures}


def fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.2e}" if x != 0 and abs(x) < 1e-2 else f"{x:.2f}"


def render(env: dict[str, str], results: dict[str, dict], quick: bool) -> str:
    """The markdown document."""
    lines = ["# Performance", "",
             "Written by `make bench` (`python benchmarks/collect.py`"
             + (" --quick" if quick else "") + "). Every figure is a ratio against a "
             "reference timed in the same process (the untracked loop, one gradient, the "
             "Trainer with probes off, fused AdamW), with one thread; the scripts interleave "
             "rounds and take medians. Absolute times depend on the machine's load.", "",
             "| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in env.items()]
    lines += ["", "## Figures", "", "| benchmark | figure | ratio | target |",
              "|---|---|---|---|"]
    for name, res in results.items():
        if not res["figures"]:
            lines.append(f"| {name} | ({res['status']}) | | |")
        for label, value, target in res["figures"]:
            lines.append(f"| {name} | {label} | {fmt(value)} | {target} |")
    for name, res in results.items():
        lines += ["", f"## {name}", "", f"`{res['command']}` — {res['status']}", "", "```",
                  res["output"].rstrip(), "```"]
        if res.get("note"):
            lines += ["", res["note"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs (a smoke check)")
    ap.add_argument("--out", default=str(HERE.parent / "docs" / "performance.md"))
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=None)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per script")
    args = ap.parse_args()
    env = machine()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, bench in BENCHES.items():
            if args.only and name not in args.only:
                continue
            print(f"running {name} ...", flush=True)
            results[name] = run_one(name, bench, args.quick, Path(tmp), args.timeout)
            results[name]["note"] = bench.note
            print(f"  {results[name]['status']}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(render(env, results, args.quick))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
