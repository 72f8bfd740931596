import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
import torch

import trainlab
from trainlab.errors import ConfigError, TrainlabError, UnknownNameError
from trainlab.optim import OPTIMIZERS, OptimizerInfo, build_optimizer, optimizer_info
from trainlab.papers import paper, papers
from trainlab.phenomena import PHENOMENA
from trainlab.registry import (
    EntryInfo,
    Registry,
    all_registries,
    entries_for_paper,
    pillar_modules,
)


def test_unknown_name_lists_close_match_and_all_names():
    reg = Registry("widget-test")
    reg.register("orthogonal", object(), summary="x")
    reg.register("lsuv", object(), summary="y")
    with pytest.raises(UnknownNameError) as err:
        reg.get("orthogonl")
    msg = str(err.value)
    assert "Did you mean 'orthogonal'" in msg and "lsuv" in msg and "orthogonal" in msg


def test_duplicate_registration_raises():
    reg = Registry("widget-test-2")
    reg.register("a", 1, summary="one")
    with pytest.raises(TrainlabError, match="already registered"):
        reg.register("a", 2, summary="two")


def test_decorator_form_returns_object():
    reg = Registry("widget-test-3")

    @reg.register("f", summary="a function")
    def f():
        return 3

    assert reg.get("f") is f and f() == 3


def test_papers_table_has_119_rows():
    rows = papers()
    assert [p.row for p in rows] == list(range(1, 120))
    assert paper(42).title.startswith("All you need is a good init")


@pytest.mark.parametrize("kind", sorted(all_registries()))
def test_every_entry_is_documented_and_cites_valid_rows(kind):
    for entry in all_registries()[kind].entries():
        assert entry.summary and "\n" not in entry.summary
        assert all(1 <= r <= 119 for r in entry.papers), (kind, entry.name, entry.papers)


def test_entries_for_paper_finds_orthogonal():
    assert "orthogonal" in {e.name for e in entries_for_paper(1)}


# ---- typed entry infos ---------------------------------------------------------------------

@dataclass(frozen=True)
class _WidgetInfo(EntryInfo):
    fast: bool = False
    shape: Literal["round", "square"] = "round"
    tags: tuple[str, ...] = ()
    size: int = 0


def test_flag_typo_and_wrong_type_raise_at_registration():
    reg = Registry("widget-test-typed", info=_WidgetInfo)
    reg.register("ok", 1, summary="one", fast=True, shape="square", tags=("a",), size=3)
    assert reg.entry("ok").info == _WidgetInfo(True, "square", ("a",), 3)
    with pytest.raises(ConfigError, match="Did you mean 'fast'"):
        reg.register("typo", 2, summary="two", fats=True)
    for bad in ({"fast": 1}, {"shape": "oval"}, {"tags": ["a"]}, {"tags": (1,)}, {"size": True},
                {"size": 1.5}):
        with pytest.raises(TrainlabError, match="must be"):
            reg.register("bad", 3, summary="three", **bad)
    assert "typo" not in reg and "bad" not in reg


def test_required_flag_must_be_given():
    with pytest.raises(TrainlabError, match="reproduces"):
        PHENOMENA.register("widget-phenomenon", object, summary="no reproduces flag")


def test_a_second_registry_of_a_kind_raises():
    Registry("widget-test-once")
    with pytest.raises(TrainlabError, match="already exists"):
        Registry("widget-test-once")
    with pytest.raises(TrainlabError, match="already exists"):
        Registry("optimizer")


def test_optimizer_flags_come_from_the_class_not_the_registration():
    class Mine(torch.optim.SGD):
        requires_closure = True
        stochastic = True

    with pytest.raises(TrainlabError, match="come from the object itself"):
        OPTIMIZERS.register("widget-opt", Mine, summary="x", needs_closure=True)
    assert optimizer_info(Mine) == OptimizerInfo(needs_closure=True, stochastic=True)
    assert OPTIMIZERS.entry("lbfgs").info == OptimizerInfo(needs_closure=True, joint_step=True)
    assert OPTIMIZERS.entry("thermodynamic-ngd").info.stochastic
    assert not OPTIMIZERS.entry("natural-gradient").info.stochastic


def test_the_optimizer_instance_refines_its_class():
    w = torch.zeros(3, requires_grad=True)
    assert not OPTIMIZERS.entry("gd").info.needs_closure
    assert not optimizer_info(build_optimizer("gd", [w], 0.1)).needs_closure
    assert optimizer_info(build_optimizer("gd", [w], 0.1, step_rule="polyak")).needs_closure
    ngd = build_optimizer("natural-gradient", [w], 0.1, solver="thermodynamic")
    assert optimizer_info(ngd).stochastic


def test_phenomenon_rows_match_the_class_and_modes_are_declared():
    for entry in PHENOMENA.entries():
        assert entry.papers == tuple(entry.obj.papers), entry.name
        assert entry.info.modes == ("quick", "full")


# ---- discovery -----------------------------------------------------------------------------

def _registering_modules() -> list[str]:
    src = Path(trainlab.__file__).parent
    found = []
    for path in sorted(src.rglob("*.py")):
        if re.search(r"^@?[A-Z_]+\.register\(", path.read_text(), re.M):
            mod = ".".join(path.relative_to(src.parent).with_suffix("").parts)
            found.append(mod.removesuffix(".__init__"))
    assert found
    return found


def test_every_module_that_registers_is_found_by_discovery():
    """A module that calls ``X.register(`` outside the pillar packages would never be imported
    by ``all_registries()`` (its entries would be missing from the CLI, docs and tests)."""
    missing = sorted(set(_registering_modules()) - set(pillar_modules()))
    assert not missing, missing


def _registry_homes() -> dict[str, str]:
    """kind -> the public module that holds its registry (where ``Registry("kind")`` is
    created, or the package above a private module)."""
    src = Path(trainlab.__file__).parent
    homes = {}
    for path in sorted(src.rglob("*.py")):
        for kind in re.findall(r"= Registry\(\s*\"([\w-]+)\"", path.read_text()):
            parts = list(path.relative_to(src.parent).with_suffix("").parts)
            while parts[-1].startswith("_"):
                parts.pop()
            homes[kind] = ".".join(parts)
    return homes


def test_importing_the_registries_registers_every_entry():
    """``from trainlab.optim import OPTIMIZERS`` (without ``all_registries()``) already holds
    every optimizer: a module that registers but that no package imports fails here."""
    homes = _registry_homes()
    code = ("import json, importlib, trainlab.registry as r\n"
            f"for m in {sorted(set(homes.values()))!r}: importlib.import_module(m)\n"
            "print(json.dumps({k: reg.names() for k, reg in r._ALL.items()}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    by_import = json.loads(out.stdout)
    for kind, reg in all_registries().items():
        if kind in homes:
            missing = sorted(set(reg.names()) - set(by_import.get(kind, ())))
            assert not missing, f"{kind} entries not imported by {homes[kind]}: {missing}"


def test_all_registries_sees_every_kind():
    assert {"analysis", "estimator", "init", "optimizer", "phenomenon", "probe", "procedure",
            "schedule", "task", "model", "theory", "transform"} <= set(all_registries())
