"""RunConfig.device and --device: names checked, availability checked where the run starts,
numbers on CUDA equal to the CPU's (CUDA tests skip without CUDA)."""

import numpy as np
import pytest
import torch

from trainlab.cli import main
from trainlab.errors import ConfigError
from trainlab.store import RunStore
from trainlab.train import RunConfig, Trainer
from trainlab.train.device import available_devices, check_device, resolve_device


def tiny(**kw) -> RunConfig:
    base = dict(task="teacher-linear", model="mlp", model_params={"width": 8}, steps=5,
                batch_size=16, every=1, probes="grad-norm,weight-norm", schedule="constant",
                schedule_params={})
    return RunConfig(**{**base, **kw})


def test_device_names_are_checked_with_the_choices():
    for good in ("cpu", "cuda", "cuda:3", "mps", "auto"):
        assert check_device(good) == good
    for bad in ("gpu", "cuda:x", "CUDA", ""):
        with pytest.raises(ConfigError, match=r"cpu, cuda, cuda:N, mps, auto.*available here"):
            check_device(bad)
    with pytest.raises(ConfigError, match="device must be"):
        tiny(device="tpu").validate()


def test_auto_and_unavailable_devices():
    want = "cuda" if torch.cuda.is_available() else (
        "mps" if "mps" in available_devices() else "cpu")
    assert resolve_device("auto") == torch.device(want)
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"'cuda:0' is not available here \(available: cpu"):
            resolve_device("cuda:0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_cli_device_error_is_one_line(tmp_path, capsys):
    assert main(["run", "--device", "cuda", "--steps", "2", "--store", str(tmp_path), "-q",
                 "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "available: cpu" in err


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_run_matches_the_cpu_run(tmp_path):
    store = RunStore(tmp_path)
    cpu = Trainer(tiny(), store=store, report=False).run()
    gpu = Trainer(tiny(device="cuda"), store=store, report=False).run()
    a, b = store.metrics(cpu.run_id), store.metrics(gpu.run_id)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(b[name][1], a[name][1], rtol=1e-4, atol=1e-6, err_msg=name)
