"""Users' own entries from entry points (a real ``*.dist-info`` on sys.path, found by
importlib.metadata) and from ``trainlab run --import``."""

import logging
import sys
import textwrap

import pytest

from trainlab import plugins
from trainlab.cli import main
from trainlab.registry import all_registries, lookup
from trainlab.store import RunStore

PLUGIN = '''
"""A user's data set and network, outside trainlab."""
import torch
from torch import nn

from trainlab.tasks._task import Task


def my_data(n: int = 64, data_seed: int = 0):
    """Noisy sine regression from a user's package."""
    g = torch.Generator().manual_seed(data_seed)
    x = torch.rand(2 * n, 1, generator=g) * 6 - 3
    y = torch.sin(x) + 0.1 * torch.randn(2 * n, 1, generator=g)
    return Task("my-data", "regression", x[:n], y[:n], x[n:], y[n:], num_outputs=1)


class MyNet(nn.Module):
    """A two-layer tanh network from a user's package."""

    def __init__(self, input_shape, num_outputs, hidden: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(input_shape[0], hidden), nn.Tanh(),
                                  nn.Linear(hidden, num_outputs))

    def forward(self, x):
        return self.body(x)
'''

REGISTERING = '''
"""A module whose import registers an optimizer itself (the module form)."""
import torch

from trainlab.optim import OPTIMIZERS


class PlainSGD(torch.optim.SGD):
    pass


OPTIMIZERS.register("my-sgd", PlainSGD, summary="SGD registered by a user's module")
'''


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A distribution 'userplug' with entry points, on sys.path; its entries are removed
    from the registries afterwards so no other test sees them."""
    (tmp_path / "userplug_pieces.py").write_text(textwrap.dedent(PLUGIN))
    (tmp_path / "userplug_optim.py").write_text(textwrap.dedent(REGISTERING))
    (tmp_path / "userplug_broken.py").write_text("raise ImportError('no such dependency')\n")
    info = tmp_path / "userplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: userplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [trainlab.tasks]
        my-data = userplug_pieces:my_data
        [trainlab.models]
        my-net = userplug_pieces:MyNet
        [trainlab.optimizers]
        my-sgd = userplug_optim
        [trainlab.probes]
        broken = userplug_broken
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reset()
    yield tmp_path
    for kind, name in (("task", "my-data"), ("model", "my-net"), ("optimizer", "my-sgd"),
                       ("task", "my-data-2")):
        lookup(kind)._entries.pop(name, None)
    for mod in ("userplug_pieces", "userplug_optim", "userplug_broken", "userplug_extra"):
        sys.modules.pop(mod, None)
    plugins.reset()


def test_entry_point_groups_follow_the_registry_kinds():
    assert plugins.entry_point_group("task") == "trainlab.tasks"
    assert plugins.entry_point_group("optimizer") == "trainlab.optimizers"
    assert plugins.entry_point_group("analysis") == "trainlab.analyses"
    assert plugins.entry_point_group("phenomenon") == "trainlab.phenomena"


def test_entry_points_register_and_a_run_uses_them(plugin_dir, caplog, capsys):
    caplog.set_level(logging.WARNING, logger="trainlab")
    regs = all_registries()
    task = regs["task"].entry("my-data")
    assert task.summary == "Noisy sine regression from a user's package."
    assert regs["model"].get("my-net").__name__ == "MyNet"
    assert regs["optimizer"].entry("my-sgd").summary == "SGD registered by a user's module"
    # the broken plug-in is reported, not fatal
    assert any("trainlab.probes:broken" in r.getMessage() and "no such dependency"
               in r.getMessage() for r in caplog.records)
    store = plugin_dir / "store"
    assert main(["run", "--task", "my-data", "--model", "my-net", "--optim", "my-sgd",
                 "--init", "torch-default", "--lr", "0.05", "--steps", "5", "--batch-size", "16",
                 "--probes", "grad-norm", "--schedule", "constant", "-q", "--no-report",
                 "--store", str(store)]) == 0
    run = RunStore(store).list_runs()[0]
    assert run.status == "completed" and run.config["task"] == "my-data"
    assert len(RunStore(store).metrics(run.id)["loss"][0]) == 6


def test_run_import_registers_before_the_config_is_checked(plugin_dir, monkeypatch, capsys):
    monkeypatch.setenv(plugins.ENV, "")  # restored afterwards
    (plugin_dir / "userplug_extra.py").write_text(textwrap.dedent('''
        from trainlab.tasks import TASKS
        from userplug_pieces import my_data

        TASKS.register("my-data-2", my_data, summary="the same data, by --import")
        '''))
    args = ["run", "--task", "my-data-2", "--model", "mlp", "--steps", "2", "--batch-size",
            "8", "--probes", "none", "-q", "--no-report", "--store", str(plugin_dir / "s")]
    assert main(args) == 2  # unknown without the import
    assert "my-data-2" in capsys.readouterr().err
    assert main(["run", "--import", "userplug_extra", *args[1:]]) == 0
    assert "userplug_extra" in plugins.os.environ[plugins.ENV].split(",")  # for workers
    assert main(["run", "--import", "no_such_module_xyz", *args[1:]]) == 2
    assert "no_such_module_xyz" in capsys.readouterr().err
