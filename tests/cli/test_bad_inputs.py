"""Every bad input is one line on stderr and exit status 2, never a traceback; inputs that
used to be silently wrong are refused or honoured."""

import json

import pytest
import yaml

from trainlab.cli import main
from trainlab.store import RunStore

RUN = ["--task", "teacher-linear", "--model", "deep-linear", "--steps", "2", "--probes",
       "none", "--schedule", "constant", "-q", "--no-report"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one completed run named `r` (with a checkpoint)."""
    root = tmp_path_factory.mktemp("store")
    assert main(["run", "--store", str(root), *RUN, "--steps", "20", "--name", "r",
                 "--checkpoint-every", "5"]) == 0
    return root


TINY = {"task": "teacher-linear", "model": "deep-linear", "steps": 2, "probes": "none",
        "schedule": "constant", "schedule_params": {}}


def _config(tmp_path, content: dict | str | bytes):
    """A config file: the tiny run with ``content`` merged in (or raw text/bytes)."""
    path = tmp_path / "c.yaml"
    if isinstance(content, dict):
        content = yaml.safe_dump({**TINY, **content})
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return ["--config", str(path)]


# (name, extra argv for `trainlab run` or a full argv via a callable, text the error names)
RUN_CASES = [
    ("binary config", lambda t, s: _config(t, bytes(range(256))), "not UTF-8"),
    ("cadence not a number", ["--probes", "grad-norm@abc"], "cadence"),
    ("cadence zero", ["--probes", "grad-norm@0"], "cadence"),
    ("infinite steps", ["-p", "steps=.inf"], "'steps'"),
    ("one beta", ["--optim", "adamw", "-p", "optim.betas=[0.9]"], "betas"),
    ("NaN weight decay", ["--optim", "adamw", "-p", "optim.weight_decay=nan"], "weight_decay"),
    ("unknown probe parameter", ["--probes", "sharpness", "-p", "probe.sharpness.foo=1"],
     "no parameter 'foo'"),
    ("parameters of a probe not in the run", ["-p", "probe.sharpness.max_iter=5"],
     "not a probe of this run"),
    ("model too large to allocate", ["-p", "model.width=10000000000"], "width"),
    ("seed too large", ["--seed", "99999999999999999999"], "'seed'"),
    ("negative seed", ["--seed", "-1"], "'seed'"),
    ("probe_params: 3", lambda t, s: _config(t, {"probe_params": 3}), "probe_params"),
    ("task: 3", lambda t, s: _config(t, {"task": 3}), "'task'"),
    ("probes: 7", lambda t, s: _config(t, {"probes": 7}), "'probes'"),
    ("seed: true", lambda t, s: _config(t, {"seed": True}), "'seed'"),
    ("steps: true", lambda t, s: _config(t, {"steps": True}), "'steps'"),
    ("lr: false", lambda t, s: _config(t, {"lr": False}), "'lr'"),
    ("name: [1,2]", lambda t, s: _config(t, {"name": [1, 2]}), "'name'"),
    ("a date as a parameter", lambda t, s: _config(t, "model_params: {width: 2020-01-01}"),
     "width"),
    ("config is a list", lambda t, s: _config(t, "[1, 2]"), "mapping"),
    ("lr: nan", ["--lr", "nan"], "'lr'"),
    ("sequence task with the MLP", ["--task", "sequence", "--model", "mlp"],
     "models that fit it: "),
    ("transformer on mnist1d", ["--task", "mnist1d", "-p", "task.num_samples=200", "--model",
                                "transformer"], "models that fit it: "),
    ("--take-over without --resume", ["--take-over"], "--take-over"),
]


@pytest.mark.parametrize("name,extra,needle", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_bad_run_inputs_are_one_line_exit_2(tmp_path, capsys, name, extra, needle):
    base = ["-q", "--no-report"] if callable(extra) else RUN  # a config file: nothing else
    extra = extra(tmp_path, None) if callable(extra) else extra
    assert main(["run", "--store", str(tmp_path / "s"), *base, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err, err
    if (tmp_path / "s" / "runs.sqlite").exists():
        assert RunStore(tmp_path / "s").list_runs() == []  # refused before a run was created


def test_the_mismatch_names_the_models_that_fit(tmp_path, capsys):
    assert main(["run", "--store", str(tmp_path), *RUN, "--task", "sequence",
                 "--model", "mlp"]) == 2
    fits = capsys.readouterr().err.split("models that fit it: ")[1].strip().split(", ")
    assert "transformer" in fits and "mlp" not in fits
    assert main(["run", "--store", str(tmp_path), *RUN, "--task", "sequence",
                 "--model", fits[0], "--steps", "1"]) == 0


def _store_cases(store, tmp_path):
    s = str(store)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "artifacts").write_text("a file where a folder should be")
    return [
        (["run", "--store", str(a_file), *RUN], "is a file"),
        (["run", "--store", str(tmp_path / "x.sqlite"), *RUN], "database file"),
        (["run", "--store", str(broken), *RUN], "not writable"),
        (["report", "r", "--store", s, "-o", str(tmp_path)], "directory"),
        (["runs", "export", "r", "--store", s, "-o", str(tmp_path / "no" / "m.csv")],
         "does not exist"),
        (["runs", "rm", "", "--store", s], "empty run reference"),
        (["runs", "rm", " ", "--store", s], "empty run reference"),
        (["run", "--resume", "r", "--store", s, "--steps", "10", "--lr", "5"],
         "--lr, --steps cannot change it"),
        (["run", "--resume", "r", "--store", s, "-p", "optim.momentum=0.9"], "-p"),
        (["run", "--resume", "nothing-like-this", "--store", s], "no run"),
    ]


def test_bad_store_and_run_references_are_one_line_exit_2(store, tmp_path, capsys):
    for argv, needle in _store_cases(store, tmp_path):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and needle in err, (argv, err)
    (run,) = RunStore(store).list_runs()  # nothing was removed or resumed
    assert run.name == "r" and run.status == "completed"
    assert not (tmp_path / "x.sqlite").exists() and not (tmp_path / "runs.sqlite").exists()


def test_the_store_database_file_names_its_store(store, capsys):
    assert main(["runs", "list", "--json", "--store", str(store / "runs.sqlite")]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["r"]


def test_json_export_is_valid_json_with_nan(tmp_path):
    s = RunStore(tmp_path)
    rid = s.create_run({}, name="n")
    s.log_metrics(rid, [(0, "loss", float("nan")), (1, "loss", float("inf")), (2, "loss", 0.5)])
    s.set_status(rid, "diverged")
    out = tmp_path / "m.json"
    assert main(["runs", "export", "n", "--format", "json", "-o", str(out),
                 "--store", str(tmp_path)]) == 0
    text = out.read_text()
    rows = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert [r["value"] for r in rows] == ["nan", "inf", 0.5]


def test_a_run_name_with_mathtext_makes_a_comparison_report(tmp_path):
    argv = ["run", "--store", str(tmp_path), *RUN]
    assert main([*argv, "--name", r"$\frac{a$"]) == 0
    assert main([*argv, "--name", "b"]) == 0
    out = tmp_path / "c.html"
    assert main(["report", r"$\frac{a$", "b", "--store", str(tmp_path), "-o", str(out)]) == 0
    assert out.exists()


def test_a_second_ctrl_c_is_one_line_exit_130(tmp_path, capsys, monkeypatch):
    from trainlab.train import Trainer

    def run(self, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "run", run)
    assert main(["run", "--store", str(tmp_path), *RUN]) == 130
    assert capsys.readouterr().err == "trainlab run: stopped\n"
