"""``benchmarks/collect.py`` (``make bench``): runs scripts, reads their JSON figures, and
reports failures in the document instead of leaving them out."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_collect():
    spec = importlib.util.spec_from_file_location("bench_collect", ROOT / "benchmarks" /
                                                  "collect.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_collect"] = module
    spec.loader.exec_module(module)
    return module


def test_runs_a_script_reads_its_figures_and_reports_a_failure(tmp_path):
    collect = load_collect()
    good = tmp_path / "good.py"
    good.write_text("import json, sys\nprint('ratio 1.25')\n"
                    "json.dump({'ratios': {'x': 1.25}}, open(sys.argv[2], 'w'))\n")
    bad = tmp_path / "bad.py"
    bad.write_text("raise SystemExit('broken benchmark')\n")

    def figures(d):
        return [("x over reference", d["ratios"]["x"], "<= 1.5")]

    ok = collect.run_one("good", collect.Bench(str(good), ("--out", "{json}"), (), figures),
                         False, tmp_path, 60)
    assert ok["status"] == "ok" and ok["figures"] == [("x over reference", 1.25, "<= 1.5")]
    assert "ratio 1.25" in ok["output"]
    failed = collect.run_one("bad", collect.Bench(str(bad), (), (), figures), False, tmp_path,
                             60)
    assert failed["status"] == "failed (exit 1)" and not failed["figures"]
    doc = collect.render({"torch": "2.13.0+cpu", "date": "today"},
                         {"good": ok, "bad": failed}, quick=False)
    assert "| good | x over reference | 1.25 | <= 1.5 |" in doc
    assert "| bad | (failed (exit 1)) | | |" in doc and "broken benchmark" in doc
    assert "| torch | 2.13.0+cpu |" in doc


def test_every_registered_benchmark_exists_and_reads_its_json_shape():
    collect = load_collect()
    for bench in collect.BENCHES.values():
        assert (ROOT / "benchmarks" / bench.script).exists(), bench.script
        assert any("{json}" in a for a in bench.args) and any("{json}" in a for a in bench.quick)
    trainer = collect.BENCHES["trainer_overhead"].figures(
        {"ratios": {"probes_off_over_plain": 1.01, "standard_every_50_over_probes_off": 1.4},
         "probe_steps_per_measurement": {"eval": 7.5}})
    assert [f[1] for f in trainer] == [1.01, 1.4, 7.5]
    trainer = collect.BENCHES["trainer_overhead"].figures(
        {"ratios": {"probes_off_over_plain": 1.01, "standard_every_50_over_probes_off": 1.4,
                    "standard_sparse_over_probes_off": 1.1}})
    assert [f[1] for f in trainer] == [1.01, 1.4, 1.1]
    economy = collect.BENCHES["probe_overhead"].figures(
        {"results": {"untracked": {"ratio": 1.0}, "economy@1": {"ratio": 2.1}}})
    assert economy == [("`economy@1` / untracked loop", 2.1, "<= 1.5")]
    replay = collect.BENCHES["fused_replay"].figures(
        {"rows": [{"method": "ademamix", "layout": "500 x 20000", "replay_ratio": 1.24,
                   "precompiled_ratio": 1.48}]})
    assert [(f[1], f[2]) for f in replay] == [(1.24, "<= 1.5"), (1.48, "")]
    first = collect.BENCHES["first_step"].figures(
        {"rows": [{"method": "ademamix", "warm_first_step_s": 0.03, "warm_build_s": 0.0,
                   "cold": {"first_step_s": 90.0}, "warm_total_s": 5.6}]})
    assert [f[1] for f in first] == [0.03, 90.0, 0.0, 5.6]
