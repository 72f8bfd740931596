r"""The symmetric rank-k product :math:`J^\top J` through BLAS ``?syrk``, from the MKL that
PyTorch's CPU library carries.

PyTorch has no symmetric rank-k product, so a Gram matrix costs a full ``J.T @ J`` (or, in
:func:`trainlab.optim.engd.gram_matrix`'s blocked form, 5/8 of it). BLAS ``dsyrk`` computes
one triangle, half the multiply-adds of the full product. SciPy's ``dsyrk`` is OpenBLAS's,
which on Burgers' ``8400 x 1981`` float64 Jacobian (1 thread, shared 2-core CPU) took as long
as the blocked product (0.77 against 0.75 CPU s); the MKL inside ``libtorch_cpu`` exports its
BLAS kernels as ``mkl_blas_dsyrk`` / ``mkl_blas_ssyrk`` (Fortran calling convention), which
took 0.54 to 0.58 CPU s there against 0.71 to 0.77 for the blocked product and 0.96 to 1.04
for ``J.T @ J``; its triangle equalled the full product's to the last bit in that test.

The binding is an undocumented export of one PyTorch build (MKL's internal entry point, whose
signature MKL does not promise to keep), so it is used only where it was verified: torch
releases in :data:`SYRK_TORCH` (the pinned CPU build, checked by the test suite), and there
:func:`syrk_gram` checks it once per process on a small matrix against ``J.T @ J``. Outside
the gate, where the symbol is missing (a build without MKL) or the check fails, it returns
``None`` with one warning on the ``trainlab`` logger; callers then use their own product
(``gram_matrix(..., syrk=False)`` is the public path, tested on its own).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

import torch

from trainlab.optim._fused_adam import _torch_version

log = logging.getLogger("trainlab")

#: torch releases (major, minor) whose MKL ``?syrk`` export was verified (lowest, highest)
SYRK_TORCH = ((2, 13), (2, 13))
_KERNELS: dict[torch.dtype, object] | None = None


def _load() -> dict[torch.dtype, object]:
    names = {torch.float64: "mkl_blas_dsyrk", torch.float32: "mkl_blas_ssyrk"}
    found: dict[torch.dtype, object] = {}
    lib_dir = os.path.join(os.path.dirname(torch.__file__), "lib")
    paths = [os.path.join(lib_dir, f) for f in sorted(os.listdir(lib_dir))
             if f.startswith("libtorch_cpu")] if os.path.isdir(lib_dir) else []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for dtype, name in names.items():
            kernel = getattr(lib, name, None)
            if kernel is not None:
                kernel.restype = None
                found[dtype] = kernel
    return found


def _call(kernel: object, jac: torch.Tensor) -> torch.Tensor:
    """The kernel on a row-major ``(N, P)`` matrix, read as the column-major ``(P, N)``
    matrix ``A``: ``C = A A^T``, upper triangle in column-major order = the lower triangle of
    the row-major result; mirrored to a full symmetric matrix."""
    jac = jac.contiguous()
    rows, size = jac.shape
    gram = torch.zeros(size, size, dtype=jac.dtype)
    scalar = ctypes.c_double if jac.dtype == torch.float64 else ctypes.c_float
    # 64-bit integers: an LP64 library reads their low 4 bytes (little-endian), ILP64 all 8
    n, k, ld = ctypes.c_int64(size), ctypes.c_int64(rows), ctypes.c_int64(max(size, 1))
    kernel(ctypes.c_char_p(b"U"), ctypes.c_char_p(b"N"), ctypes.byref(n), ctypes.byref(k),
           ctypes.byref(scalar(1.0)), ctypes.c_void_p(jac.data_ptr()), ctypes.byref(ld),
           ctypes.byref(scalar(0.0)), ctypes.c_void_p(gram.data_ptr()), ctypes.byref(ld))
    return gram.add_(gram.tril(-1).mT)


def _kernels() -> dict[torch.dtype, object]:
    global _KERNELS
    if _KERNELS is None:
        low, high = SYRK_TORCH
        gated = sys.byteorder == "little" and low <= _torch_version() <= high
        found = _load() if gated else {}
        gen = torch.Generator().manual_seed(0)
        for dtype, kernel in list(found.items()):
            probe = torch.randn(37, 13, dtype=dtype, generator=gen)
            full = probe.T @ probe
            tol = 1e-12 if dtype == torch.float64 else 1e-5
            if float((_call(kernel, probe) - full).abs().max()) > tol * float(full.abs().max()):
                del found[dtype]
        if torch.float64 not in found:
            why = ("no working MKL ?syrk in this PyTorch build" if gated else
                   f"torch {torch.__version__} is outside the verified releases {SYRK_TORCH}")
            log.warning("syrk_gram: %s; Gram matrices use the blocked matrix product "
                        "(about 1.3x the time)", why)
        _KERNELS = found
    return _KERNELS


def syrk_gram(jac: torch.Tensor) -> torch.Tensor | None:
    r"""``jac.T @ jac`` ``(P, P)`` (exactly symmetric) by BLAS ``?syrk`` for a 2-D float32 or
    float64 CPU tensor; ``None`` where this path does not apply (another dtype or device, a
    ``jac`` that autograd must differentiate, or no working kernel: see the module
    docstring)."""
    if (jac.dim() != 2 or jac.device.type != "cpu" or 0 in jac.shape
            or (jac.requires_grad and torch.is_grad_enabled())):
        return None
    kernel = _kernels().get(jac.dtype)
    if kernel is None:
        return None
    with torch.no_grad():
        return _call(kernel, jac.detach())
