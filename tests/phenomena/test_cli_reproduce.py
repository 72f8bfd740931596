"""``trainlab reproduce``: list, one phenomenon, --all with the gallery, JSON and errors."""

from __future__ import annotations

import json

import pytest

from trainlab.cli import main
from trainlab.phenomena import PHENOMENA, Check, Phenomenon
from trainlab.phenomena._base import PhenomenonInfo
from trainlab.registry import Entry


class _Tiny(Phenomenon):
    name = "tiny-test"
    papers = (1,)
    claim = "Two plus two is four."

    def run(self, *, quick=False, seed=0):
        return {"value": 4.0 if quick else 5.0}

    def check(self, data):
        return [Check("sum", data["value"], "== 4", data["value"] == 4.0)]


@pytest.fixture()
def only_tiny(monkeypatch):
    monkeypatch.setattr(PHENOMENA, "_entries", {
        "tiny-test": Entry("tiny-test", _Tiny, "a test phenomenon", (1,), "phenomenon",
                           PhenomenonInfo(reproduces=True))})


def test_list_json(only_tiny, capsys):
    assert main(["reproduce", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"name": "tiny-test", "papers": [1], "summary": "a test phenomenon",
                     "claim": "Two plus two is four.", "reproduces": True}]


def test_one_json_and_text(only_tiny, capsys):
    assert main(["reproduce", "tiny-test", "--quick", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["passed"] and res["checks"][0]["measured"] == 4.0
    assert main(["reproduce", "tiny-test"]) == 1  # full setting fails -> exit 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "== 4" in out


def test_all_writes_gallery(only_tiny, tmp_path, capsys):
    path = tmp_path / "g.html"
    assert main(["reproduce", "--all", "--quick", "--out", str(path)]) == 0
    html = path.read_text()
    assert "tiny-test: PASS" in html and "Two plus two is four." in html


def test_errors(only_tiny, capsys):
    assert main(["reproduce", "nope"]) == 2
    assert "Unknown phenomenon 'nope'" in capsys.readouterr().err
    assert main(["reproduce"]) == 2
    assert main(["reproduce", "tiny-test", "--all"]) == 2
