"""The monitor's parameter snapshot written by the fused norm pass (``fused.tensor_norms``'s
``copy_to``; ``Monitor._snapshot``): an exact copy, the norms unchanged by it (also when
the copy goes over the previous parameters it reads); the economy histories to the bit the
same as with the separate copy (the monitor's code before this change) at cadences 1 and 3,
float32 and float64, on the fused and on the eager path; the snapshot copied again when a
parameter changed in place after the norm pass; and the build removing this user's stale
libraries (only ``trainlab_fused_*.so`` plain files in its own directory, written long
enough ago), and a library removed between its build and its load built again."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab import log as log_module
from trainlab.probes import Probe, build_probes, fused
from trainlab.train import Monitor
from trainlab.train import monitor as monitor_module

pytestmark = pytest.mark.skipif(fused.library() is None, reason="no C compiler here")

SHAPES = [(33, 9), (33,), (5000, 3), (1,), (0,)]


def bits(t: torch.Tensor) -> list[str]:
    return [float.hex(v) for v in t.double().reshape(-1).tolist()]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_copy_is_exact_and_changes_no_norm_even_over_prev(dtype):
    g = torch.Generator().manual_seed(0)
    w = [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]
    grads = [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]
    prev = [t + 1e-3 * torch.randn(s, generator=g, dtype=dtype) for t, s in zip(w, SHAPES)]
    want = fused.FAMILIES
    plain = fused.tensor_norms(w, grads, w, prev, want)
    into = [torch.full_like(t, 7.0) for t in w]
    copied = fused.tensor_norms(w, grads, w, prev, want, copy_to=into)
    assert torch.equal(plain, copied)
    assert all(bits(a) == bits(b) for a, b in zip(into, w))
    over = [t.clone() for t in prev]  # the copy written over the previous parameters it reads
    aliased = fused.tensor_norms(w, grads, w, over, want, copy_to=over)
    assert torch.equal(plain, aliased)
    assert all(bits(a) == bits(b) for a, b in zip(over, w))


def test_copy_to_of_another_size_or_dtype_is_refused_and_nothing_is_written():
    w = [torch.randn(40), torch.randn(3)]
    for bad in ([torch.zeros(40), torch.zeros(4)], [torch.zeros(40), torch.zeros(3).double()],
                [torch.zeros(40)]):
        assert fused.tensor_norms(w, None, None, None, ("weight",), copy_to=bad) is None
        assert all(not t.any() for t in bad)


class Nudge(Probe):
    """Changes the first weight in place (after the norm probes of the step have run)."""

    name = "nudge"

    def measure(self, ctx):
        with torch.no_grad():
            next(iter(ctx.model.parameters())).mul_(0.5)
        return {}  # a fake that measures nothing: it only moves a weight's version counter


def run(dtype, every: int, offer: bool, monkeypatch, nudge: bool = False, steps: int = 9):
    """An Adam run with the economy probes; ``offer`` False: the monitor copies the
    snapshot itself after the probes (as before the fused pass wrote it). Returns the
    history (as hex strings), the number of snapshot copies and, at each step after the
    monitor's, whether the kept snapshot equals the parameters to the bit."""
    monkeypatch.setattr(monitor_module.fused, "available",
                        fused.available if offer else lambda: False)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(9, 33), nn.Tanh(), nn.Linear(33, 70), nn.ReLU(),
                          nn.Linear(70, 4)).to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    probes = build_probes("economy", every=every)
    if nudge:
        probes.append(Nudge(every=every))
    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, probes=probes,
                  total_steps=steps - 1)
    copies, same = [], []
    real = torch._foreach_copy_
    monkeypatch.setattr(torch, "_foreach_copy_", lambda *a: copies.append(1) or real(*a))
    g = torch.Generator().manual_seed(5)
    for _ in range(steps):
        x = torch.randn(16, 9, generator=g).to(dtype)
        y = torch.randint(0, 4, (16,), generator=g)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        mon.step(loss, (x, y))
        if mon._prev is not None:
            same.append(all(bits(p.detach()) == bits(mon._prev[n])
                            for n, p in model.named_parameters()))
        opt.step()
    mon.finish()
    monkeypatch.undo()
    history = {k: [(s, float.hex(v)) for s, v in vals] for k, vals in mon.history.items()}
    return history, len(copies), same


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("every", [1, 3])
@pytest.mark.parametrize("on", [True, False])
def test_histories_are_the_bits_of_the_separate_copy(monkeypatch, dtype, every, on):
    """The fused path (``on``) and the eager path (``TRAINLAB_FUSED=0``): the snapshot
    written in the norm pass, or copied as before, gives the same bits; on the fused path
    at cadence 1 no snapshot is copied separately (the fused pass wrote it)."""
    monkeypatch.setattr(fused, "_enabled", on)
    written, copies, same = run(dtype, every, True, monkeypatch)
    monkeypatch.setattr(fused, "_enabled", on)
    copied, copies_before, same_before = run(dtype, every, False, monkeypatch)
    assert {"update_ratio", "update_norm", "grad_norm", "gsnr"} <= set(written)
    assert written == copied
    assert all(same) and all(same_before) and len(same) == len(same_before) > 0
    assert copies_before == len(same_before)
    # at cadence 3 the snapshots are taken at the steps before the due ones (no norm pass
    # there: copied), except at the last step, 8, measured and before 9, due by the cadence
    assert copies == ({1: 0, 3: copies_before - 1}[every] if on else copies_before)


def test_a_parameter_changed_after_the_norm_pass_is_copied_again(monkeypatch):
    """A probe that changes a weight in place after ``grad-norm`` (version counter moved):
    the snapshot holds the changed weight, as the separate copy did."""
    written, copies, same = run(torch.float32, 1, True, monkeypatch, nudge=True)
    copied, _, same_before = run(torch.float32, 1, False, monkeypatch, nudge=True)
    assert written == copied and all(same) and all(same_before)
    assert copies == len(same)  # every snapshot copied again


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners")
def test_a_build_removes_this_users_stale_libraries_only(monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    cache = tmp_path / "fused"
    cache.mkdir(mode=0o700)
    stale = [cache / "trainlab_fused_0123456789abcdef0123.so", cache / "trainlab_fused_x.so"]
    kept = [cache / "other.so", cache / "trainlab_fused_x.so.txt", cache / "notes",
            cache / "trainlab_fused_recent.so"]  # written less than STALE_SECONDS ago
    long_ago = time.time() - fused.STALE_SECONDS - 60
    for path in [*stale, *kept]:
        path.write_bytes(b"old")
        if path.name != "trainlab_fused_recent.so":
            os.utime(path, (long_ago, long_ago))
    (cache / "trainlab_fused_dir.so").mkdir()  # not a plain file: left
    os.symlink(tmp_path / "elsewhere.so", cache / "trainlab_fused_link.so")  # a link: left
    (tmp_path / "trainlab_fused_outside.so").write_bytes(b"not in the cache")
    target = fused.build()
    assert target.parent == cache and target.exists()
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    assert (cache / "trainlab_fused_dir.so").is_dir()
    assert (cache / "trainlab_fused_link.so").is_symlink()
    assert (tmp_path / "trainlab_fused_outside.so").exists()
    stamp = os.stat(target).st_mtime_ns
    (cache / "trainlab_fused_y.so").write_bytes(b"old")
    os.utime(cache / "trainlab_fused_y.so", (long_ago, long_ago))
    assert fused.build() == target and os.stat(target).st_mtime_ns == stamp
    assert (cache / "trainlab_fused_y.so").exists()  # only a build removes stale files


def test_a_library_removed_before_it_is_loaded_is_built_again(monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(fused, "_lib", None)
    monkeypatch.setattr(fused, "_failed", False)
    real = fused.build
    calls: list = []

    def build_then_lose_it():
        path = real()
        if not calls:
            path.unlink()  # as another version's build would remove it
        calls.append(path)
        return path

    monkeypatch.setattr(fused, "build", build_then_lose_it)
    assert fused.library() is not None and len(calls) == 2 and calls[1].exists()


def test_a_stale_library_that_cannot_be_removed_is_left_with_a_warning(monkeypatch, tmp_path,
                                                                        caplog):
    cache = tmp_path / "fused"
    cache.mkdir(mode=0o700)
    stale = cache / "trainlab_fused_old.so"
    stale.write_bytes(b"old")
    long_ago = time.time() - fused.STALE_SECONDS - 60
    os.utime(stale, (long_ago, long_ago))

    def refuse(self, missing_ok=False):
        raise PermissionError("read-only")

    monkeypatch.setattr(Path, "unlink", refuse)
    monkeypatch.setattr(log_module, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        fused._remove_stale(cache, cache / "trainlab_fused_new.so")
    assert stale.exists()
    assert "could not remove the stale fused library" in caplog.records[-1].getMessage()
