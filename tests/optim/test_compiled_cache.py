"""The ahead-of-time compiled (cached) path of ``fused=True`` updates against the
torch.compile path and the eager update: same bits, one compile per cache, a warned
fallback on a bad cache file, the cache folder's environment variables."""

from __future__ import annotations

import logging
import os

import pytest
import torch

import trainlab.optim._compiled as compiled


def _update(p, g, m, s):  # a small Adam-like update: few ops, quick to compile
    m.mul_(s[0]).add_(g * s[1])
    p.sub_(m / (m.abs().sqrt() + s[2]) * s[3])


SCALARS = (0.9, 0.1, 1e-8, 1e-2)


def _lists(seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    sizes = [5, 7, 3, 9, 4]  # 5 tensors in groups of 2: the last group padded
    return [[torch.randn(n, generator=g, dtype=dtype) for n in sizes] for _ in range(3)]


def _apply(update, lists, steps=3):
    for _ in range(steps):
        update(lists, SCALARS)
    return lists


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compile-cache")


@pytest.fixture(autouse=True)
def _setup(cache, monkeypatch):
    if not compiled.precompile_available():
        pytest.skip(f"torch {torch.__version__} is outside PRECOMPILE_TORCH")
    monkeypatch.setenv("TRAINLAB_COMPILE_CACHE", str(cache))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setattr(compiled, "GROUP_SIZE", 2)


def test_precompiled_equals_torch_compile_and_is_loaded_from_the_cache(cache, monkeypatch):
    eager = _lists(0)
    for _ in range(3):
        for p, g, m in zip(*eager):
            _update(p, g, m, torch.tensor(SCALARS, dtype=torch.float64))
    public = compiled.CompiledUpdate(_update, "Toy")
    public.precompile = False
    ref = _apply(public, _lists(0))
    built = compiled.CompiledUpdate(_update, "Toy")
    out = _apply(built, _lists(0))
    files = list((cache / "precompiled").glob("*.bin"))
    assert len(files) == 1 and "-g2-n3-float64-cpu-" in files[0].name
    assert (cache / "inductor").is_dir()  # inductor's own cache went there too
    loads = []
    original = torch.compiler.load_compiled_function
    monkeypatch.setattr(torch.compiler, "load_compiled_function",
                        lambda f: loads.append(1) or original(f))
    loaded = compiled.CompiledUpdate(_update, "Toy")  # a new process's view: from the file
    loaded.replay = False  # the kernel replay (test_kernel_replay.py) would skip the load
    again = _apply(loaded, _lists(0))
    assert loads == [1]
    for a, b, c, e in zip(sum(ref, []), sum(out, []), sum(again, []), sum(eager, [])):
        assert torch.equal(a, b) and torch.equal(a, c)
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-14)
    # restored after compiling (torch may since have written its own default into it)
    assert os.environ.get("TORCHINDUCTOR_CACHE_DIR") in (
        None, compiled._torch_default_inductor_dir())


def test_failed_guard_check_runs_the_step_by_torch_compile(monkeypatch):
    update = compiled.CompiledUpdate(_update, "Toy")
    update.replay = False  # the precompiled function's path (not its kernels' replay)
    ref = _apply(update, _lists(1), steps=1)
    pre = next(iter(update._precompiled.values()))
    monkeypatch.setattr(pre, "guard_check", lambda *a: False)
    out = _apply(update, _lists(1), steps=1)
    assert update._compiled  # the torch.compile function was built and used
    assert all(torch.equal(a, b) for a, b in zip(sum(ref, []), sum(out, [])))


def test_a_bad_cache_file_warns_and_falls_back(cache, caplog):
    update = compiled.CompiledUpdate(_update, "Toy")
    update.replay = False
    key = (2, 3, torch.float64, torch.device("cpu"))
    path = update._cache_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    good = path.read_bytes() if path.exists() else None
    path.write_bytes(b"not a compiled function")
    try:
        with caplog.at_level(logging.WARNING, logger="trainlab"):
            out = _apply(update, _lists(2), steps=1)
    finally:
        if good is not None:
            path.write_bytes(good)
    assert update._precompiled[key] is None
    assert any("could not be loaded" in r.getMessage() for r in caplog.records)
    public = compiled.CompiledUpdate(_update, "Toy")
    public.precompile = False
    ref = _apply(public, _lists(2), steps=1)
    assert all(torch.equal(a, b) for a, b in zip(sum(ref, []), sum(out, [])))


def test_cache_folder_and_version_gate(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINLAB_COMPILE_CACHE", str(tmp_path / "c"))
    assert compiled.compile_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TRAINLAB_COMPILE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compiled.compile_cache_dir() == tmp_path / "trainlab" / "compile"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    with compiled._inductor_cache():  # the caller's choice is kept
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")
    default = compiled._torch_default_inductor_dir()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default)  # torch's own: ours inside
    with compiled._inductor_cache():
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(
            tmp_path / "trainlab" / "compile" / "inductor")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == default
    monkeypatch.setattr(compiled, "PRECOMPILE_TORCH", ((1, 0), (1, 13)))
    assert not compiled.precompile_available()
    assert not compiled.CompiledUpdate(_update, "Toy").precompile


def test_an_unwritable_cache_folder_keeps_inductors_own_and_warns_on_save(tmp_path,
                                                                          monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("TRAINLAB_COMPILE_CACHE", str(blocker / "cache"))
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with compiled._inductor_cache():
        assert os.environ.get("TORCHINDUCTOR_CACHE_DIR") == before
    update = compiled.CompiledUpdate(_update, "Toy")
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        update._save(object(), blocker / "cache" / "x.bin")  # mkdir fails before any save
    assert any("could not be saved" in r.getMessage() for r in caplog.records)



def test_later_groups_of_offset_views_match_eager():
    # the guards are checked on the first group only: later groups of views at odd storage
    # offsets (a flat parameter buffer) must still be right
    def lists():
        g = torch.Generator().manual_seed(5)
        first = [[torch.randn(4, generator=g, dtype=torch.float64) for _ in range(2)]
                 for _ in range(3)]
        flats = [torch.randn(3 * 7 + 1, generator=g, dtype=torch.float64) for _ in range(3)]
        return [f + [flat[1 + 7 * i:1 + 7 * (i + 1)] for i in range(3)]
                for f, flat in zip(first, flats)]

    out = _apply(compiled.CompiledUpdate(_update, "Toy"), lists())
    eager = lists()
    for _ in range(3):
        for p, g, m in zip(*eager):
            _update(p, g, m, torch.tensor(SCALARS, dtype=torch.float64))
    for a, e in zip(sum(out, []), sum(eager, [])):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-14)
