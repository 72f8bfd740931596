import json

import pytest

from trainlab.cli import build_parser, command_modules, main
from trainlab.cli.listing import WHAT


def test_every_command_has_help_and_an_example(capsys):
    for mod in command_modules():
        assert mod.HELP and mod.__doc__ and "Example:" in mod.__doc__, mod.NAME
        with pytest.raises(SystemExit) as exc:
            main([mod.NAME, "--help"])
        assert exc.value.code == 0
    assert "run" in capsys.readouterr().out
    assert build_parser().prog == "trainlab"


@pytest.mark.parametrize("what", sorted(WHAT))
def test_list_json_comes_from_the_registry(capsys, what):
    from trainlab.registry import lookup

    assert main(["list", what, "--json"]) == 0
    names = [e["name"] for e in json.loads(capsys.readouterr().out)]
    assert names == lookup(WHAT[what]).names()


def test_list_papers_json_has_every_row(capsys):
    assert main(["list", "papers", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 119
    assert "init:orthogonal" in rows[0]["entries"]


def test_user_errors_exit_2_with_one_line(capsys, tmp_path):
    assert main(["run", "--store", str(tmp_path), "--optim", "adamm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Did you mean 'adam'" in err and "Traceback" not in err
    assert main(["run", "--store", str(tmp_path), "--lr", "-1"]) == 2
    assert "'lr'" in capsys.readouterr().err
    assert main(["list", "optimisers"]) == 2
    assert "Did you mean 'optimizers'" in capsys.readouterr().err
    bad = tmp_path / "c.yaml"
    bad.write_text("lr: [unclosed")
    assert main(["run", "--store", str(tmp_path), "--config", str(bad)]) == 2


def test_run_runs_export_report_end_to_end(capsys, tmp_path):
    store = str(tmp_path / "store")
    args = ["--store", store, "--task", "mnist1d", "-p", "task.num_samples=600",
            "-p", "model.width=16", "--steps", "20", "--batch-size", "32", "--every", "10",
            "-p", "schedule.warmup=2", "-q"]
    assert main(["run", *args, "--name", "first"]) == 0
    out = capsys.readouterr().out
    assert "completed" in out and "report:" in out
    assert main(["runs", "list", "--store", store, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["name"] == "first" and runs[0]["status"] == "completed"
    assert main(["runs", "show", "first", "--store", store, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "report" in shown["artifacts"]
    csv_path = tmp_path / "m.csv"
    assert main(["runs", "export", "first", "--store", store, "-o", str(csv_path)]) == 0
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "step,name,value" and any(",sharpness," in ln for ln in lines)
    assert main(["run", *args, "--name", "second", "--init", "lsuv"]) == 0
    capsys.readouterr()
    out_html = tmp_path / "cmp.html"
    assert main(["report", "first", "second", "--store", store, "-o", str(out_html)]) == 0
    assert "comparison of 2 runs" in out_html.read_text()
    assert main(["runs", "rm", "first", "--store", store]) == 0
    assert "removed" in capsys.readouterr().out


def test_compare_runs_a_grid(capsys, tmp_path):
    out_html = tmp_path / "grid.html"
    assert main(["compare", "--grid", "init=orthogonal,xavier-normal", "--processes", "1",
                 "--store", str(tmp_path), "--task", "teacher-linear", "--model",
                 "deep-linear", "--steps", "10", "--batch-size", "0", "--probes", "grad-norm",
                 "--every", "5", "--schedule", "constant",
                 "-o", str(out_html)]) == 0
    out = capsys.readouterr().out
    assert "init=orthogonal" in out and "init=xavier-normal" in out
    assert out_html.exists()
