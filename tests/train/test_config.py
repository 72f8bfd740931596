import json

import pytest

from trainlab.errors import ConfigError, UnknownNameError
from trainlab.train import RunConfig, apply_overrides


def test_yaml_and_json_round_trip(tmp_path):
    cfg = RunConfig(lr=0.1, model_params={"width": 7}, probe_params={"sharpness": {"tol": 1e-4}})
    for suffix in (".yaml", ".json"):
        path = cfg.save(tmp_path / f"c{suffix}")
        assert RunConfig.from_file(path) == cfg


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match="Did you mean 'steps'"):
        RunConfig.from_dict({"stepz": 3})


def test_unknown_registry_name_lists_choices():
    with pytest.raises(UnknownNameError, match="Did you mean 'adamw'"):
        RunConfig(optim="adamww").validate()


@pytest.mark.parametrize("field,value,match", [("lr", -1.0, "'lr'"), ("steps", 0, "'steps'"),
                                               ("every", 0, "'every'"),
                                               ("dtype", "float16", "dtype")])
def test_invalid_values_name_the_parameter(field, value, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(**{field: value}).validate()


def test_malformed_file_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="malformed"):
        RunConfig.from_file(bad)
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(ConfigError, match="mapping"):
        RunConfig.from_file(bad)


def test_overrides_sections_and_probe_params():
    cfg = apply_overrides(RunConfig(), ["lr=0.5", "model.width=3", "schedule.warmup=0",
                                        "probe.sharpness.max_iter=9", "steps=12"])
    assert cfg.lr == 0.5 and cfg.model_params == {"width": 3} and cfg.steps == 12
    assert cfg.schedule_params == {"warmup": 0}
    assert cfg.probe_params == {"sharpness": {"max_iter": 9}}
    with pytest.raises(ConfigError, match="cannot set"):
        apply_overrides(RunConfig(), ["a.b.c.d=1"])


def test_switching_schedule_drops_default_params_but_keeps_explicit_ones():
    assert RunConfig().switch(schedule="constant").schedule_params == {}
    explicit = RunConfig(schedule_params={"warmup": 7})
    assert explicit.switch(schedule="cosine").schedule_params == {"warmup": 7}
    assert apply_overrides(RunConfig(), ["schedule=sgdr"]).validate().schedule_params == {}


@pytest.mark.parametrize("field,value,match", [
    ("steps", True, "'steps'.*integer"), ("lr", False, "'lr'.*number"),
    ("seed", 1.5, "'seed'"), ("seed", 2**70, "'seed'"), ("steps", float("inf"), "finite"),
    ("lr", float("nan"), "'lr'"), ("task", 3, "'task'.*string"), ("name", [1], "'name'"),
    ("probes", 7, "'probes'"), ("model_params", [1], "model_params"),
    ("optim_params", {"weight_decay": float("nan")}, "NaN"),
    ("probe_params", {"sharpness": 3}, "mapping"),
    ("dtype", "float16", "'dtype'.*must be one of 'float32', 'float64'"),
    ("checkpoint_seconds", -1.0, "checkpoint_seconds")])
def test_runconfig_checks_at_construction(field, value, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(**{field: value})


def test_numbers_written_as_yaml_1_1_strings_are_numbers():
    cfg = RunConfig(lr="1e-3", steps="2e3", every=10.0)
    assert cfg.lr == 1e-3 and cfg.steps == 2000 and isinstance(cfg.steps, int)
    assert apply_overrides(RunConfig(), ["steps=1e3", "lr=5e-4"]).steps == 1000


def test_the_probe_spec_is_parsed_once_into_a_typed_list():
    cfg = RunConfig(probes="grad-norm@5,economy,sharpness@10")
    names = [p.name for p in cfg.probe_list]
    assert names[0] == "grad-norm" and len(names) == len(set(names))
    by_name = {p.name: p.every for p in cfg.probe_list}
    assert by_name["grad-norm"] == 5  # named again by `economy` without a cadence: kept
    assert by_name["sharpness"] == 10 and by_name["rotation"] is None
    # a later explicit cadence wins over the preset's
    assert {p.name: p.every for p in RunConfig(probes="standard,sharpness@7").probe_list}[
        "sharpness"] == 7


def test_probe_params_only_for_probes_of_the_run_and_their_parameters():
    RunConfig(probes="sharpness", probe_params={"sharpness": {"max_iter": 5}})
    with pytest.raises(ConfigError, match="not a probe of this run"):
        RunConfig(probes="grad-norm", probe_params={"sharpness": {"max_iter": 5}})
    with pytest.raises(ConfigError, match="no parameter 'maxiter'"):
        RunConfig(probes="sharpness", probe_params={"sharpness": {"maxiter": 5}})
