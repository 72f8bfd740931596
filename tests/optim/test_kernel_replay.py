"""The replayed kernels of ``fused=True`` updates (trainlab.optim._kernel_replay) against the
precompiled function and torch.compile: same bits and version counters, recorded by the
process that builds, loaded by a new one without the compiled function, a warned fallback
on a tampered cache, the version gate, and the checks that refuse a replay."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import trainlab.optim._compiled as compiled
import trainlab.optim._kernel_replay as kr


def _update(p, g, m, s):  # not the toy of test_compiled_cache: its own kernel module
    m.mul_(s[0]).add_(g * s[1])
    p.sub_(m / (m.abs().sqrt() + s[2]) * s[3] + p * s[4])


SCALARS = (0.9, 0.1, 1e-8, 1e-2, 1e-3)
KEY = (2, 3, torch.float64, torch.device("cpu"))


def _lists(seed):
    g = torch.Generator().manual_seed(seed)
    sizes = [5, 7, 3, 9, 4]  # 5 tensors in groups of 2: the last group padded
    return [[torch.randn(n, generator=g, dtype=torch.float64) for n in sizes]
            for _ in range(3)]


def _apply(update, lists, steps=3):
    for _ in range(steps):
        update(lists, SCALARS)
    return lists


def _same(a_lists, b_lists):
    return all(torch.equal(a, b) and a._version == b._version
               for a, b in zip(sum(a_lists, []), sum(b_lists, [])))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("replay-cache")


@pytest.fixture(autouse=True)
def _setup(cache, monkeypatch):
    if not (compiled.precompile_available() and kr.replay_available()):
        pytest.skip(f"torch {torch.__version__} is outside PRECOMPILE_TORCH / REPLAY_TORCH")
    monkeypatch.setenv("TRAINLAB_COMPILE_CACHE", str(cache))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setattr(compiled, "GROUP_SIZE", 2)


@pytest.fixture(scope="module")
def built(cache):
    """The first process: compiles, records the replay, saves both (module-wide, so the
    compilation is paid once). Skipped outside the gates, like every test that uses it (a
    module fixture runs before the function-level skip of ``_setup``)."""
    if not (compiled.precompile_available() and kr.replay_available()):
        pytest.skip(f"torch {torch.__version__} is outside PRECOMPILE_TORCH / REPLAY_TORCH")
    mp = pytest.MonkeyPatch()
    mp.setenv("TRAINLAB_COMPILE_CACHE", str(cache))
    mp.setattr(compiled, "GROUP_SIZE", 2)
    try:
        update = compiled.CompiledUpdate(_update, "Toy")
        out = _apply(update, _lists(0))
    finally:
        mp.undo()
    return update, out


def test_replay_is_recorded_saved_and_loaded_with_the_same_bits(built, cache, monkeypatch):
    update, out = built
    assert update._replays[KEY] is not None  # this process already runs the replay
    manifest = json.loads(update._replay_path(KEY).read_text())
    assert manifest["mutated"] == [0, 2]  # p and m written, g only read
    assert all((update._replay_path(KEY).parent / k["file"]).exists()
               for k in manifest["kernels"])
    # the precompiled function (its own instance, loaded from the .bin) and torch.compile
    aot = compiled.CompiledUpdate(_update, "Toy")
    aot.replay = False
    ref = _apply(aot, _lists(0))
    public = compiled.CompiledUpdate(_update, "Toy")
    public.precompile = False
    pub = _apply(public, _lists(0))

    def no_load(f):
        raise AssertionError("a replay must not load the compiled function")

    monkeypatch.setattr(torch.compiler, "load_compiled_function", no_load)
    loaded = compiled.CompiledUpdate(_update, "Toy")  # a new process: the saved replay
    again = _apply(loaded, _lists(0))
    assert loaded._replays[KEY] is not None and not loaded._precompiled
    assert _same(out, ref) and _same(again, ref) and _same(pub, ref)
    eager = _lists(0)
    for _ in range(3):
        for p, g, m in zip(*eager):
            _update(p, g, m, torch.tensor(SCALARS, dtype=torch.float64))
    for a, e in zip(sum(again, []), sum(eager, [])):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-14)


def test_a_tampered_kernel_file_warns_and_uses_the_precompiled_function(built, caplog):
    update, out = built
    path = update._replay_path(KEY)
    text = path.read_text()
    manifest = json.loads(text)
    manifest["kernels"][0]["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))
    try:
        fresh = compiled.CompiledUpdate(_update, "Toy")
        with caplog.at_level(logging.WARNING, logger="trainlab"):
            again = _apply(fresh, _lists(0))
    finally:
        if json.loads(path.read_text())["kernels"][0]["sha256"] == "0" * 64:
            path.write_text(text)  # (a re-recording may have repaired it already)
    assert any("could not be loaded" in r.getMessage() for r in caplog.records)
    assert fresh._precompiled[KEY] is not None
    assert _same(again, out)


def test_aliased_first_group_or_a_subclass_is_left_to_the_compiled_paths(built):
    update, _ = built
    replay = update._replays[KEY]
    lists = _lists(3)
    lists[2][0] = lists[0][0]  # the state buffer is the parameter
    before = [t.clone() for t in sum(lists, [])]
    pads = update._padding(2, 3, lists[0][0])
    s = torch.tensor(SCALARS, dtype=torch.float64)
    assert not update._replay_step(replay, lists, pads, s)
    assert all(torch.equal(a, b) for a, b in zip(before, sum(lists, [])))

    class Sub(torch.Tensor):  # a subclass may hold no data of its own: not replayed
        pass

    lists = _lists(4)
    lists[1][4] = lists[1][4].as_subclass(Sub)
    before = [t.clone() for t in sum(lists, [])]
    assert not update._replay_step(replay, lists, pads, s)
    assert all(torch.equal(a, b) for a, b in zip(before, sum(lists, [])))
    lists[1][4] = torch.nn.Parameter(lists[1][4].as_subclass(torch.Tensor))
    assert update._replay_step(replay, lists, pads, s)  # a Parameter is plain


def test_slots_refuse_arguments_of_unknown_origin():
    group = [[torch.zeros(3), torch.zeros(5)], [torch.zeros(3), torch.zeros(5)]]
    s = torch.zeros(4, dtype=torch.float64)
    assert kr._slots((group[1][0], s, 5, group[0][1]), group, s) == [2, 4, 6, 1]
    with pytest.raises(kr.ReplayError, match="not an input"):
        kr._slots((torch.zeros(3),), group, s)
    with pytest.raises(kr.ReplayError, match="size of one input"):
        kr._slots((4,), group, s)
    with pytest.raises(kr.ReplayError, match="float"):
        kr._slots((0.5,), group, s)
    with pytest.raises(kr.ReplayError, match="no recordable"):
        kr.record(lambda group, s: None, 2, 2, 4, torch.zeros(2))


def test_a_manifest_that_does_not_fit_is_refused(built, tmp_path):
    update, _ = built
    path = update._replay_path(KEY)
    with pytest.raises(kr.ReplayError, match="slots"):
        kr.load(path, n_slots=4)
    stale = tmp_path / "stale.replay.json"
    stale.write_text(json.dumps({**json.loads(path.read_text()), "torch": "0.0"}))
    with pytest.raises(kr.ReplayError, match="another"):
        kr.load(stale, n_slots=64)
    stale.write_text(json.dumps({**json.loads(path.read_text()), "cpu": "x86_64-NONE"}))
    with pytest.raises(kr.ReplayError, match="another CPU"):
        kr.load(stale, n_slots=64)


def test_version_gate(monkeypatch):
    assert compiled.CompiledUpdate(_update, "Toy").replay
    monkeypatch.setattr(kr, "REPLAY_TORCH", ((1, 0), (1, 13)))
    assert not kr.replay_available()
    assert not compiled.CompiledUpdate(_update, "Toy").replay


def test_a_new_process_steps_without_torchs_compiler_stack(built, cache):
    # the real thing: a fresh interpreter with the warm cache imports neither torch._dynamo
    # nor torch._inductor to take replayed steps, nor to build and use an optimizer
    # (trainlab.optim._lazy_dynamo)
    code = textwrap.dedent("""
        import sys, torch
        import trainlab.optim._compiled as compiled
        compiled.GROUP_SIZE = 2
        sys.path.insert(0, sys.argv[1])
        from test_kernel_replay import _lists, _apply, _update
        _update.__module__ = sys.argv[3]  # as pytest imported it: the same cache key
        update = compiled.CompiledUpdate(_update, "Toy")
        out = _apply(update, _lists(0))
        torch.save([t.clone() for t in sum(out, [])], sys.argv[2])
        from trainlab.optim import build_optimizer  # a whole optimizer's life, unfused
        ps = [torch.ones(3, requires_grad=True)]
        opt = build_optimizer("gd", ps, lr=0.1, momentum=0.9)
        ps[0].grad = torch.ones(3)
        opt.step()
        opt.zero_grad()
        opt.load_state_dict(opt.state_dict())
        print(sorted(m for m in ("torch._dynamo", "torch._inductor") if m in sys.modules))
    """)
    out_file = cache / "subprocess-out.pt"
    env = {**os.environ, "TRAINLAB_COMPILE_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__),
                          str(out_file), _update.__module__], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "[]"
    theirs = torch.load(out_file)
    assert all(torch.equal(a, b) for a, b in zip(theirs, sum(built[1], [])))
