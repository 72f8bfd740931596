"""The tutorials in examples/ run as scripts with a tiny budget and show what they teach."""

from __future__ import annotations

import importlib.util
import inspect
import math
import runpy
import sys
from pathlib import Path

import pytest

from trainlab.optim import OPTIMIZERS, SCHEDULES
from trainlab.registry import lookup
from trainlab.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _run(script: str, args: list[str], monkeypatch) -> dict:
    """``python examples/SCRIPT ARGS``, in this process; returns the namespace."""
    monkeypatch.setattr(sys, "argv", [script, *args])
    return runpy.run_path(str(EXAMPLES / script), run_name="tutorial")


def test_diagnose_divergence(tmp_path, monkeypatch, capsys):
    ns = _run("diagnose_divergence.py", [], monkeypatch)
    out = ns["main"](["--steps", "12", "--store", str(tmp_path)])
    bad, good, why = out["bad"], out["good"], out["diagnosis"]
    assert bad.status == "diverged" and good.status == "completed"
    # the probes' explanation: above the stability edge from step 0, exploding gradients
    assert why["eos_ratio_0"] > 1 and why["grad_norm_growth_per_step"] > 2
    assert out["fixed_lr"] == pytest.approx(1 / why["sharpness_0"])
    store = RunStore(tmp_path)
    fixed = store.metrics(good.run_id)["eos_ratio"][1]
    assert fixed[0] == pytest.approx(0.5, rel=1e-3)  # lr = 1/sharpness at step 0
    assert "diverged at step" in capsys.readouterr().out


def test_choose_init_for_a_50_layer_network(tmp_path, monkeypatch, capsys):
    ns = _run("choose_init_deep.py", [], monkeypatch)
    out = ns["main"](["--steps", "6", "--store", str(tmp_path)])
    s = out["summaries"]
    assert len(s) == 5 and out["best"] != out["worst"]
    # the chosen scheme keeps the forward signal through 50 layers within 10x, the
    # un-gained orthogonal init (ReLU) loses it by many orders of magnitude
    assert abs(math.log10(s[out["best"]]["forward_var_ratio"])) < 1
    assert s["orthogonal"]["forward_var_ratio"] < 1e-6
    assert out["final_loss"][out["best"]] < out["final_loss"][out["worst"]]
    assert f"best: {out['best']}" in capsys.readouterr().out


def test_own_optimizer_gets_the_contract_battery(tmp_path, monkeypatch):
    monkeypatch.setattr(OPTIMIZERS, "_entries", dict(OPTIMIZERS._entries))  # undone after
    ns = _run("own_optimizer.py", [], monkeypatch)
    out = ns["main"](["--steps", "10", "--store", str(tmp_path)])
    assert out["result"].status == "completed" and out["battery"] is None
    assert "normalized-sgd" in lookup("optimizer").names()
    # the battery itself (what --check runs through pytest), called here on the new entry
    spec = importlib.util.spec_from_file_location(
        "contract_battery", ROOT / "tests/optim/test_contract.py")
    battery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(battery)
    tests = [f for n, f in vars(battery).items() if n.startswith("test_") and callable(f)]
    assert len(tests) >= 7
    for test in tests:
        params = inspect.signature(test).parameters
        schedules = SCHEDULES.names() if "schedule" in params else [None]
        for schedule in schedules:
            kwargs = {"schedule": schedule} if schedule else {}
            test(name="normalized-sgd", **kwargs)


def test_reproduce_a_phenomenon(tmp_path, monkeypatch, capsys):
    ns = _run("reproduce_phenomenon.py", [], monkeypatch)
    outcome = ns["main"](["--store", str(tmp_path)])
    assert outcome.passed and outcome.mode == "quick" and len(outcome.checks) >= 2
    (run,) = RunStore(tmp_path).list_runs()
    assert "saxe-sigmoids" in run.name
    assert "saxe-sigmoids (quick): PASS" in capsys.readouterr().out
