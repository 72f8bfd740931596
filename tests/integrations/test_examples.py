"""The integration examples run as scripts (a few steps each) and record what they say."""

import os
import runpy
import sys
from pathlib import Path

import pytest

from trainlab.store import RunStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.filterwarnings(
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning")
@pytest.mark.parametrize("script", ["lightning_callback.py", "huggingface_callback.py"])
def test_example_runs_and_records(script, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(sys, "argv", [script, "--steps", "4", "--store", str(tmp_path / "s"),
                                      "--tensorboard", str(tmp_path / "tb")])
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    out = capsys.readouterr().out
    (run,) = RunStore(tmp_path / "s").list_runs()
    assert run.status == "completed" and f"run {run.id}: completed" in out
    assert len(RunStore(tmp_path / "s").metrics(run.id)["loss"][0]) == 4
    assert os.listdir(tmp_path / "tb") and (tmp_path / "s" / "artifacts").exists()
