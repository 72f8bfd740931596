"""``trainlab reproduce`` keeps the data each run returned: recorded with the verdict, read back
by ``NAME --from-store --data``, used by ``--from-store`` to redraw figures (``--figure``),
capped with a warning, and records written before data was kept still work."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from trainlab.cli import main
from trainlab.phenomena import PHENOMENA, Check, Outcome, Phenomenon
from trainlab.phenomena._base import PhenomenonInfo
from trainlab.phenomena.records import latest, read_data, record
from trainlab.registry import Entry
from trainlab.store import RunStore, json_codec
from trainlab.store.json_codec import Omitted

PLOTTED: list = []  # the data each plot() call received


def _data(quick: bool) -> dict:
    return {"per_seed": np.array([0.5, 0.25, float("nan")], dtype=np.float32),
            "curve": torch.linspace(0, 1, 5, dtype=torch.float64),
            "by_depth": {2: 1.0, 8: float("inf")}, "pair": (1, "a"), "quick": quick}


class _Rich(Phenomenon):
    name = "rich-data-test"
    papers = (1,)
    claim = "The data survives."
    paper_figure = "Fig. 1"

    def run(self, *, quick=False, seed=0):
        return _data(quick)

    def check(self, data):
        ok = bool(data["quick"])
        return [Check("mean", float(np.nanmean(data["per_seed"])), "any (quick)", ok)]

    def plot(self, data):  # uses the types: a tensor method, a numpy array, int keys
        import matplotlib.pyplot as plt

        PLOTTED.append(data)
        fig, ax = plt.subplots()
        ax.plot(data["curve"].numpy(), label=str(sorted(data["by_depth"])))
        ax.plot(data["per_seed"])
        return fig


def _install(monkeypatch, *classes):
    entries = {c.name: Entry(c.name, c, "a test phenomenon", (1,), "phenomenon",
                             PhenomenonInfo(reproduces=True)) for c in classes}
    monkeypatch.setattr(PHENOMENA, "_entries", entries)
    PLOTTED.clear()


@pytest.fixture()
def store(tmp_path):
    return str(tmp_path / "store")


def _read_back(store: str, name: str, mode: str = "quick"):
    with RunStore(store) as s:
        rec = latest(s)[(name, mode)]
        return json_codec.loads(read_data(s, rec.run_id))


def _equal(a, b) -> bool:
    same = {k: type(a[k]) is type(b[k]) for k in a}
    return (all(same.values()) and a["by_depth"] == b["by_depth"] and a["pair"] == b["pair"]
            and a["per_seed"].dtype == b["per_seed"].dtype
            and np.array_equal(a["per_seed"], b["per_seed"], equal_nan=True)
            and a["curve"].dtype == b["curve"].dtype and torch.equal(a["curve"], b["curve"]))


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_run_data_is_recorded_with_the_verdict(monkeypatch, store, tmp_path, jobs):
    _install(monkeypatch, _Rich)
    assert main(["reproduce", "--all", "--quick", "--jobs", str(jobs), "--store", store,
                 "--out", str(tmp_path / "g.html")]) == 0
    assert _equal(_read_back(store, "rich-data-test"), _data(True))


def test_data_prints_the_recorded_data_as_json_without_running(monkeypatch, store, capsys):
    _install(monkeypatch, _Rich)
    assert main(["reproduce", "rich-data-test", "--quick", "--store", store]) == 0
    assert main(["reproduce", "rich-data-test", "--store", store]) == 1  # full: FAILs
    capsys.readouterr()
    monkeypatch.setattr(_Rich, "run", lambda self, **kw: pytest.fail("must not run"))
    assert main(["reproduce", "rich-data-test", "--quick", "--from-store", "--data",
                 "--store", store]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["name"], out["mode"], out["seed"], out["passed"]) == (
        "rich-data-test", "quick", 0, True)
    assert out["data"]["per_seed"]["data"] == [0.5, 0.25, "nan"]  # readable as it is
    assert _equal(json_codec.decode(out["data"]), _data(True))
    # a recorded FAIL: its data is printed all the same, the exit status says FAIL
    assert main(["reproduce", "rich-data-test", "--from-store", "--data", "--store",
                 store]) == 1
    assert json.loads(capsys.readouterr().out)["data"]["quick"] is False


def test_from_store_redraws_the_figures_from_the_recorded_data(monkeypatch, store, tmp_path):
    _install(monkeypatch, _Rich)
    assert main(["reproduce", "--all", "--quick", "--store", store, "--out",
                 str(tmp_path / "a.html")]) == 0
    PLOTTED.clear()
    monkeypatch.setattr(_Rich, "run", lambda self, **kw: pytest.fail("must not run"))
    path = tmp_path / "b.html"
    assert main(["reproduce", "--all", "--quick", "--from-store", "--store", store,
                 "--out", str(path)]) == 0
    assert len(PLOTTED) == 1 and _equal(PLOTTED[0], _data(True))
    assert "data:image/png;base64" in path.read_text()


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".pdf", b"%PDF"),
                                           (".png", b"\x89PNG")])
def test_figure_writes_the_redrawn_figure_in_the_asked_format(monkeypatch, store, tmp_path,
                                                              suffix, magic):
    _install(monkeypatch, _Rich)
    assert main(["reproduce", "rich-data-test", "--quick", "--store", store]) == 0
    path = tmp_path / f"fig{suffix}"
    assert main(["reproduce", "rich-data-test", "--quick", "--from-store", "--figure",
                 str(path), "--store", store]) == 0
    assert magic in path.read_bytes()[:400]


def test_records_written_before_data_was_kept_still_work(monkeypatch, store, tmp_path,
                                                         capsys, caplog):
    _install(monkeypatch, _Rich)
    with RunStore(store) as s:  # as `record` wrote it before: verdict and figure, no data
        outcome = Outcome("rich-data-test", [Check("mean", 0.375, "any", True)], quick=True)
        record(s, outcome, png=b"\x89PNG old figure")
    path = tmp_path / "g.html"
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        assert main(["reproduce", "--all", "--quick", "--from-store", "--store", store,
                     "--out", str(path)]) == 0
    assert PLOTTED == []  # nothing to redraw from: the stored PNG is shown
    assert "rich-data-test recorded no data" in caplog.text
    assert "data:image/png;base64" in path.read_text()
    capsys.readouterr()
    assert main(["reproduce", "rich-data-test", "--quick", "--from-store", "--data",
                 "--store", store]) == 2
    err = capsys.readouterr().err
    assert "holds no data" in err and "trainlab reproduce rich-data-test --quick" in err
    assert main(["reproduce", "rich-data-test", "--quick", "--from-store", "--store",
                 store]) == 0  # the verdict itself reads back as before


def test_over_the_cap_the_warning_names_what_was_left_out(monkeypatch, store, tmp_path,
                                                          caplog):
    class _Big(_Rich):
        name = "big-data-test"

        def run(self, *, quick=False, seed=0):
            return _data(quick) | {"trajectory": np.arange(3000.0), "model": object()}

    _install(monkeypatch, _Big)
    monkeypatch.setattr(json_codec, "DATA_LIMIT_BYTES", 4096)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        assert main(["reproduce", "big-data-test", "--quick", "--store", store]) == 0
    assert "reproduce big-data-test: left out of the record (not recordable): " \
           "data['model'] (object)" in caplog.text
    assert "reproduce big-data-test: the recorded data is capped at 4096 bytes" in caplog.text
    assert "data['trajectory'] (" in caplog.text
    back = _read_back(store, "big-data-test")
    assert isinstance(back["trajectory"], Omitted) and isinstance(back["model"], Omitted)
    assert _equal({k: back[k] for k in _data(True)}, _data(True))  # the rest is kept
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="trainlab"):  # a redraw needs all of it
        assert main(["reproduce", "big-data-test", "--quick", "--from-store", "--store",
                     store, "--out", str(tmp_path / "g.html")]) == 0
    assert "lacks data['trajectory'], data['model']" in caplog.text and PLOTTED == []


def test_a_failed_record_leaves_no_half_record(monkeypatch, store):
    _install(monkeypatch, _Rich)

    def full_disk(path, data):
        if path.name == "data.json":
            raise OSError(28, "No space left on device")
        path.write_bytes(data)

    monkeypatch.setattr("trainlab.store.store.atomic_write_bytes", full_disk)
    assert main(["reproduce", "rich-data-test", "--quick", "--out", "x.html",
                 "--store", store]) == 2  # the error is reported, one line
    with RunStore(store) as s:
        assert s.list_runs() == [] and latest(s) == {}
        assert not any((s.root / "artifacts").glob("*/figure.png"))


def test_changed_data_is_refused_not_read(monkeypatch, store, capsys):
    _install(monkeypatch, _Rich)
    assert main(["reproduce", "rich-data-test", "--quick", "--store", store]) == 0
    with RunStore(store) as s:
        path = s.artifact(latest(s)[("rich-data-test", "quick")].run_id, "data")
    path.write_text(path.read_text().replace("0.25", "0.99"))
    capsys.readouterr()
    assert main(["reproduce", "rich-data-test", "--quick", "--from-store", "--data",
                 "--store", store]) == 2
    assert "does not match the checksum" in capsys.readouterr().err


def test_data_that_cannot_be_encoded_still_records_the_verdict(monkeypatch, store, caplog):
    _install(monkeypatch, _Rich)

    def broken(obj, **kw):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(json_codec, "dumps", broken)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        assert main(["reproduce", "rich-data-test", "--quick", "--store", store]) == 0
    assert "reproduce rich-data-test: its data is not recorded: encoding it raised " \
           "RecursionError" in caplog.text
    with RunStore(store) as s:
        rec = latest(s)[("rich-data-test", "quick")]
        assert rec.outcome.passed and read_data(s, rec.run_id) is None


def test_bad_input_is_one_line_and_exit_2(monkeypatch, store, capsys):
    _install(monkeypatch, _Rich)
    assert main(["reproduce", "rich-data-test", "--quick", "--store", store]) == 0
    capsys.readouterr()
    for argv, says in [
        (["rich-data-test", "--data"], "--data goes with NAME --from-store"),
        (["--all", "--from-store", "--data"], "--data goes with NAME --from-store"),
        (["rich-data-test", "--figure", "f.svg"], "--figure goes with NAME --from-store"),
        (["rich-data-test", "--from-store", "--figure", "f.jpg"],
         "'--figure format' parameter of reproduce must be one of 'png', 'svg', 'pdf'"),
        (["nope", "--from-store", "--data"], "Unknown phenomenon 'nope'"),
        (["rich-data-test", "--from-store", "--data"], "no recorded full verdict"),
    ]:
        assert main(["reproduce", *argv, "--quick" if "full" not in says else "--seed=0",
                     "--store", store]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1, (argv, err)


def test_from_store_with_a_seed_reads_the_record_of_that_seed(monkeypatch, store, capsys):
    _install(monkeypatch, _Rich)
    for seed in (3, 0):  # seed 0 recorded last: the newest record
        assert main(["reproduce", "rich-data-test", "--quick", "--seed", str(seed),
                     "--store", store]) == 0
    capsys.readouterr()
    monkeypatch.setattr(_Rich, "run", lambda self, **kw: pytest.fail("must not run"))
    for given, seed in ((["--seed", "3"], 3), (["--seed", "0"], 0), ([], 0)):
        assert main(["reproduce", "rich-data-test", "--quick", "--from-store", "--data",
                     *given, "--store", store]) == 0
        assert json.loads(capsys.readouterr().out)["seed"] == seed
    assert main(["reproduce", "rich-data-test", "--quick", "--from-store", "--json",
                 "--seed", "3", "--store", store]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 3
    assert main(["reproduce", "rich-data-test", "--quick", "--from-store", "--seed", "7",
                 "--store", store]) == 2
    err = capsys.readouterr().err.strip()
    assert "no recorded quick verdict with seed 7" in err and len(err.splitlines()) == 1


def test_a_folder_left_by_a_killed_reproduce_is_removed_by_the_next(monkeypatch, store,
                                                                     caplog):
    import os
    import time

    _install(monkeypatch, _Rich)
    assert main(["reproduce", "rich-data-test", "--quick", "--store", store]) == 0
    with RunStore(store) as s:
        kept = s.artifact(latest(s)[("rich-data-test", "quick")].run_id, "data").parent
        # what a process killed between the files and the transaction leaves behind
        old = s.root / "artifacts" / "20260101-000000-abcdef"
        young = s.root / "artifacts" / "20260101-000000-123456"
        for folder in (old, young):
            folder.mkdir()
            (folder / "data.json").write_text("{}")
        stamp = time.time() - 7200
        for p in (old / "data.json", old, kept / "data.json", kept):
            os.utime(p, (stamp, stamp))
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        assert main(["reproduce", "rich-data-test", "--quick", "--store", store]) == 0
    assert not old.exists()  # no run refers to it, unchanged for two hours
    assert young.exists()  # may be a write in progress in another process
    assert (kept / "data.json").exists()  # a recorded run's folder, however old
    assert [r.getMessage() for r in caplog.records if "no run refers" in r.getMessage()] == [
        f"store {RunStore(store).root}: removed the artifact folder {old.name}, which no run "
        f"refers to (left by a process killed while recording a run)"]
