"""``trainlab inspect`` command."""

import json

from trainlab.cli import main


def test_json_output(capsys):
    rc = main(["inspect", "--model", "mlp", "-p", "depth=3", "-p", "width=16",
               "--init", "orthogonal,kumar", "-p", "init.kumar.activation=relu",
               "--batch-size", "32", "--measures", "signal,bias", "--json",
               "-p", "task.num_samples=200"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["scheme"] for s in data["schemes"]] == ["orthogonal", "kumar"]
    assert len(data["schemes"][0]["forward_var"]) == 4


def test_table_output(capsys):
    rc = main(["inspect", "--model", "mlp", "-p", "depth=2", "-p", "width=8", "--init",
               "orthogonal", "--batch-size", "16", "--measures", "signal", "-p",
               "task.num_samples=200"])
    assert rc == 0
    assert "orthog" in capsys.readouterr().out


def test_user_errors_exit_2(capsys):
    assert main(["inspect", "--init", "nope", "--batch-size", "8", "-p",
                 "task.num_samples=100"]) == 2
    assert "Unknown init" in capsys.readouterr().err
    assert main(["inspect", "-p", "a.b.c.d=1", "--batch-size", "8"]) == 2
