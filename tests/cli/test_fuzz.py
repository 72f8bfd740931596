"""Fuzz the command line and config files: every input ends in exit 0 or 2, never in a
traceback (an exception escaping ``main``)."""

import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainlab.cli import main

BASE = ["--task", "teacher-linear", "--model", "deep-linear", "--probes", "none",
        "-q", "--no-report", "--schedule", "constant", "-p", "task.n_train=16",
        "-p", "task.n_test=4"]
KEYS = ["lr", "batch_size", "every", "seed", "dtype", "z_loss", "name", "probes", "model",
        "optim", "task", "init", "schedule", "checkpoint_every", "flush_seconds",
        "model.width", "model.depth", "optim.momentum", "optim.betas", "optim.weight_decay",
        "schedule.warmup", "init.gain", "probe.grad-norm.every", "probe.sharpness.max_iter",
        "bogus", "model.bogus", "a.b.c", ""]
NAMES = ["teacher-linear", "sequence", "deep-linear", "mlp", "transformer", "sgd", "adamw",
         "constant", "cosine", "orthogonal", "lsuv", "grad-norm", "grad-norm@2",
         "grad-norm@x", "economy", "none", "float64", "float16", "nope"]
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))

values = st.one_of(
    st.integers(-3, 40), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.none(), st.sampled_from(NAMES), st.text(string.printable, max_size=8),
    st.lists(st.one_of(st.floats(0, 1), st.integers(0, 3)), max_size=3))


def _text(v) -> str:
    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


assignment = st.builds(lambda k, v: f"{k}={_text(v)}", st.sampled_from(KEYS), values)
flag = st.one_of(
    st.tuples(st.sampled_from(["--lr", "--seed", "--batch-size", "--every", "--dtype",
                               "--optim", "--init", "--probes", "--name", "--z-loss",
                               "--checkpoint-every", "--model", "--task"]),
              st.one_of(st.sampled_from(NAMES), st.text(string.printable, max_size=6),
                        st.integers(-2, 30).map(str))).map(list),
    assignment.map(lambda a: ["-p", a]))


def _assert_clean(argv) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    assert code in (0, 2), (argv, code)


@SETTINGS
@given(st.lists(flag, max_size=4))
def test_run_flags_never_end_in_a_traceback(tmp_path_factory, flags):
    store = tmp_path_factory.mktemp("fuzz")
    argv = ["run", "--store", str(store), *BASE, *[x for f in flags for x in f],
            "--steps", "2"]
    _assert_clean(argv)


config_file = st.one_of(
    st.dictionaries(st.sampled_from([k for k in KEYS if "." not in k] + [
        "task_params", "model_params", "optim_params", "probe_params", "steps"]),
        st.one_of(values, st.dictionaries(st.sampled_from(["width", "grad-norm", "x"]),
                                          values, max_size=2)), max_size=4).map(yaml.safe_dump),
    st.text(max_size=40), st.binary(max_size=40))


@SETTINGS
@given(config_file)
def test_config_files_never_end_in_a_traceback(tmp_path_factory, content):
    root = tmp_path_factory.mktemp("fuzzcfg")
    path = root / "c.yaml"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    _assert_clean(["run", "--store", str(root / "s"), "--config", str(path), *BASE,
                   "--steps", "2"])


@SETTINGS
@given(st.sampled_from(["show", "export", "rm", "report"]),
       st.one_of(st.text(max_size=12), st.sampled_from(["latest", "", "../..", "r", "%", "_"])))
def test_run_references_never_end_in_a_traceback(tmp_path_factory, action, ref):
    root = tmp_path_factory.mktemp("fuzzref")
    if ref.startswith("-"):
        ref = "x" + ref  # an option, not a reference: argparse's business
    argv = ["report", ref] if action == "report" else ["runs", action, ref]
    _assert_clean([*argv, "--store", str(root)])
