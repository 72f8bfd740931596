"""``trainlab reproduce``: list with recorded verdicts, one phenomenon, --all in parallel with
the gallery, --from-store, JSON, exit codes and errors."""

from __future__ import annotations

import json

import pytest

from trainlab.cli import main
from trainlab.phenomena import PHENOMENA, Check, Phenomenon
from trainlab.phenomena._base import PhenomenonInfo
from trainlab.phenomena.records import latest
from trainlab.registry import Entry
from trainlab.store import RunStore


class _Tiny(Phenomenon):
    name = "tiny-test"
    papers = (1,)
    claim = "Two plus two is four."
    paper_figure = "Table 9"
    scale_downs = ("fewer fingers",)

    def run(self, *, quick=False, seed=0):
        return {"value": 4.0 if quick else 5.0}

    def check(self, data):
        return [Check("sum", data["value"], "== 4", data["value"] == 4.0, 0.5, 3)]

    def plot(self, data):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, data["value"]])
        return fig


class _Other(_Tiny):
    name = "other-test"

    def run(self, *, quick=False, seed=0):
        return {"value": 4.0}


class _Broken(_Tiny):
    name = "broken-test"

    def run(self, *, quick=False, seed=0):
        raise RuntimeError("the experiment broke")


def _entry(cls):
    return Entry(cls.name, cls, "a test phenomenon", (1,), "phenomenon",
                 PhenomenonInfo(reproduces=True))


@pytest.fixture()
def two(monkeypatch):
    monkeypatch.setattr(PHENOMENA, "_entries", {c.name: _entry(c) for c in (_Tiny, _Other)})


@pytest.fixture()
def store(tmp_path):
    return str(tmp_path / "store")


def test_one_records_and_list_shows_last_verdict_per_mode(two, store, capsys):
    assert main(["reproduce", "tiny-test", "--quick", "--json", "--store", store]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["passed"] and res["mode"] == "quick" and res["checks"][0]["measured"] == 4.0
    assert main(["reproduce", "tiny-test", "--store", store]) == 1  # full setting fails
    out = capsys.readouterr().out
    assert "FAIL" in out and "== 4" in out and "+- 0.5 (3 seeds)" in out
    assert main(["reproduce", "list", "--json", "--store", store]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["tiny-test"]["quick"]["passed"] is True
    assert rows["tiny-test"]["full"]["passed"] is False
    assert rows["other-test"]["quick"] is None and rows["other-test"]["full"] is None
    assert rows["tiny-test"]["paper_figure"] == "Table 9"
    assert main(["reproduce", "list", "--store", store]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("tiny-test"))
    assert "PASS" in line and "FAIL" in line


@pytest.mark.parametrize("jobs", [1, 2])
def test_all_runs_records_and_writes_the_gallery(two, store, tmp_path, capsys, jobs):
    path = tmp_path / "g.html"
    code = main(["reproduce", "--all", "--quick", "--jobs", str(jobs), "--store", store,
                 "--out", str(path)])
    assert code == 0
    html = path.read_text()
    assert "tiny-test: PASS" in html and "other-test: PASS" in html
    assert "Two plus two is four." in html and "Table 9" in html and "fewer fingers" in html
    assert "4 +- 0.5 (3 seeds)" in html and "data:image/png;base64" in html
    with RunStore(store) as s:
        rec = latest(s)
    assert set(rec) == {("tiny-test", "quick"), ("other-test", "quick")}
    assert rec[("tiny-test", "quick")].png is not None


def test_all_exits_1_when_one_fails(two, store, tmp_path):
    assert main(["reproduce", "--all", "--store", store, "--out",
                 str(tmp_path / "g.html")]) == 1  # tiny-test fails in full mode


def test_from_store_rebuilds_the_gallery_without_running(two, store, tmp_path, monkeypatch,
                                                         capsys):
    assert main(["reproduce", "--all", "--quick", "--store", store, "--out",
                 str(tmp_path / "a.html")]) == 0

    def no_run(self, **kw):
        raise AssertionError("--from-store must not run anything")

    monkeypatch.setattr(_Tiny, "run", no_run)
    path = tmp_path / "b.html"
    assert main(["reproduce", "--all", "--quick", "--from-store", "--store", store,
                 "--out", str(path)]) == 0
    html = path.read_text()
    assert "tiny-test: PASS" in html and "data:image/png;base64" in html
    # nothing recorded for the full setting yet: a clear error, exit 2
    assert main(["reproduce", "--all", "--from-store", "--store", store]) == 2
    assert "no recorded full verdict" in capsys.readouterr().err


def test_a_raising_experiment_is_a_recorded_fail(monkeypatch, store, capsys):
    monkeypatch.setattr(PHENOMENA, "_entries", {"broken-test": _entry(_Broken)})
    assert main(["reproduce", "broken-test", "--quick", "--store", store]) == 1
    assert "the experiment broke" in capsys.readouterr().out
    with RunStore(store) as s:
        rec = latest(s)[("broken-test", "quick")]
    assert not rec.outcome.passed and "the experiment broke" in rec.outcome.error


def test_errors(two, store, capsys):
    assert main(["reproduce", "nope", "--store", store]) == 2
    assert "Unknown phenomenon 'nope'" in capsys.readouterr().err
    assert main(["reproduce", "--store", store]) == 2
    assert main(["reproduce", "tiny-test", "--all", "--store", store]) == 2
    assert main(["reproduce", "tiny-test", "--from-store", "--store", store]) == 2
    assert main(["reproduce", "--all", "--jobs", "0", "--store", store]) == 2


def test_threads_option_sets_torch_threads_for_the_run_and_restores_them(monkeypatch, store):
    import torch

    seen = []

    class _Threads(_Tiny):
        name = "threads-test"

        def run(self, *, quick=False, seed=0):
            seen.append(torch.get_num_threads())
            return {"value": 4.0}

    monkeypatch.setattr(PHENOMENA, "_entries", {"threads-test": _entry(_Threads)})
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(["reproduce", "threads-test", "--store", store]) == 0
        assert main(["reproduce", "threads-test", "--threads", "2", "--store", store]) == 0
        assert seen == [1, 2] and torch.get_num_threads() == 2
        assert main(["reproduce", "threads-test", "--threads", "0", "--store", store]) == 2
    finally:
        torch.set_num_threads(before)
