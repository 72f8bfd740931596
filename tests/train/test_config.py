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
