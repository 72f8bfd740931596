"""Every target clone of the fused C library follows the stated summation order to the bit.

On x86-64 with GCC the C functions are built as ``target_clones``: an AVX-512 (norm pass,
float64 grad-noise passes), an AVX2 and a default (baseline x86-64) version, one of which
the loader picks for the CPU at hand. The order tests (``test_fused_order.py``,
``test_fused_noise_order.py``) run only the version picked for this machine. Here the
library is built again with each non-picked version forced on every function (the
``target_clones`` attribute replaced by ``target("avx2")``, or removed for the default
code) and the same order tests run against it: a clone whose code differed (a contraction
into FMA, another lane order) fails here, on a machine that would not run it otherwise.
"""

from __future__ import annotations

import platform

import pytest
import test_fused_noise_order as noise_order
import test_fused_order as norm_order
import torch

from trainlab.probes import fused

CLONES = '#define CLONES __attribute__((target_clones("avx2", "default")))'
WIDE_CLONES = '#define WIDE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))'

FORCED = {"avx2": '__attribute__((target("avx2")))', "default": ""}
"""Each clone's code as one attribute for every function (the default clone: none)."""

pytestmark = [
    pytest.mark.skipif(not fused.available() or fused.library() is None,
                       reason="no C compiler: the fused path is not built"),
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                       reason="target clones are built on x86-64 only"),
]


def _rebuilt(source: str, cache) -> object | None:
    """The fused library built from ``source`` into the private ``cache`` folder and loaded
    (None: it could not be built); the module's own library and source are restored."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fused, "SOURCE", source)
        mp.setenv("TRAINLAB_CACHE", str(cache))
        mp.setattr(fused, "_lib", None)
        mp.setattr(fused, "_failed", False)
        lib = fused.library()
    assert lib is None or str(cache) in lib._name  # the rebuilt library, not the cached one
    return lib


@pytest.fixture(scope="module")
def clone_libraries(tmp_path_factory):
    """Each clone's library, built once for the module."""
    source = fused.SOURCE
    if CLONES not in source or WIDE_CLONES not in source:
        pytest.fail("fused.SOURCE no longer defines CLONES / WIDE_CLONES as this test expects")
    return {name: _rebuilt(source.replace(CLONES, f"#define CLONES {forced}")
                           .replace(WIDE_CLONES, f"#define WIDE_CLONES {forced}"),
                           tmp_path_factory.mktemp(name)) for name, forced in FORCED.items()}


@pytest.fixture(params=sorted(FORCED))
def clone(request, clone_libraries, monkeypatch):
    """The fused module running one clone's code (its library in place of the loaded one)."""
    name = request.param
    if name == "avx2" and torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("this CPU has no AVX2")
    lib = clone_libraries[name]
    if lib is None:  # a compiler that refuses the forced target: say so, do not pass
        pytest.fail(f"the {name} clone could not be built")
    monkeypatch.setattr(fused, "_lib", lib)
    monkeypatch.setattr(fused, "_failed", False)
    return name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_norm_pass_clone_follows_the_order(clone, dtype):
    norm_order.test_norms_follow_the_stated_order_to_the_bit(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gsnr_clone_follows_the_order(clone, dtype):
    noise_order.test_gsnr_sums_follow_the_stated_order_to_the_bit(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_row_pass_clone_follows_the_order(clone, dtype):
    noise_order.test_example_rows_follow_the_stated_order_to_the_bit(dtype)


def test_a_clone_that_changes_the_order_fails(monkeypatch, tmp_path):
    """The check can fail: a build whose block sums add a block's eight lane sums left to
    right instead of pairwise gives other bits, and the order tests say so."""
    source = fused.SOURCE
    pairwise = "q_[0] + q_[4]; })"
    assert source.count(pairwise) == 1  # PAIRSUM's result
    left = ("(((((((v_[0] + v_[1]) + v_[2]) + v_[3]) + v_[4]) + v_[5]) + v_[6]) + v_[7]);"
            " })")
    lib = _rebuilt(source.replace(pairwise, left), tmp_path)
    assert lib is not None
    monkeypatch.setattr(fused, "_lib", lib)
    with pytest.raises(AssertionError):
        norm_order.test_norms_follow_the_stated_order_to_the_bit(torch.float64)
    with pytest.raises(AssertionError):
        noise_order.test_gsnr_sums_follow_the_stated_order_to_the_bit(torch.float64)
