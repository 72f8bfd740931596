"""Calling a compiled update's C++ kernels directly: the ``fused=True`` fast path on the CPU
that needs neither torch's compiler stack in the process nor its per-call wrappers.

What inductor builds for a :class:`~trainlab.optim._compiled.CompiledUpdate` group function
on the CPU is one (or a few) C++ kernels in Python extension modules (``kernel(*args)``:
tensors passed as their data pointers, sizes as integers), called in order by a generated
Python wrapper with the group's tensors, the scalar vector and the tensors' sizes. This
module records those calls once, while a process that loaded or built the ahead-of-time
compiled function runs it on probe tensors, and turns them into a *replay*: which kernel
file, and which group tensor / scalar vector / size goes in each argument slot. The replay
is kept only if

- every argument is one of the group's tensors (by identity), the scalar vector, or the size
  of exactly one group position (probes have distinct sizes), and nothing else is passed;
- two probes with different sizes give the same replay;
- on random data the replay and the compiled function give the same bits in every output.

It is then saved beside the compiled function (a JSON manifest and a copy of each kernel
file, with its SHA-256, the torch version and the CPU's architecture and vector instruction
set, all checked when loading) and later processes load it with ``importlib`` alone: no import of
``torch._dynamo`` or ``torch._inductor``, no unpickling, no guard building (about 3-8 s of
the first step on the benchmark machine), and per call one C function call instead of
inductor's Python wrapper chain. The kernels are the same machine code the compiled
function runs, so the numbers are the same bits; the in-place outputs get their autograd
version counters bumped as the compiled function does.

Private torch details relied on (hence the version gate :func:`replay_available`, the
torch releases of :data:`~trainlab.optim._compiled.PRECOMPILE_TORCH`): inductor's
``CppPythonBindingsCodeCache.load_pybinding_async`` (the hook that records the kernels while
a compiled function is built or loaded) and the address
``torch._C._dynamo.guards._torchinductor_pyobject_tensor_data_ptr`` that a kernel module
reads from the environment when it is imported. Anything unexpected (another torch, a
kernel that takes other arguments, a manifest that does not match its files) means "no
replay": the caller then runs the ahead-of-time compiled function or ``torch.compile``
(the public path), with one warning on the ``trainlab`` logger.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import operator
import os
import platform
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from trainlab.optim._fused_adam import _torch_version

#: torch releases (major, minor) whose kernel modules trainlab replays (lowest, highest)
REPLAY_TORCH = ((2, 13), (2, 13))
_ENV_DATA_PTR = "_TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR"
_MANIFEST_VERSION = 1


def replay_available() -> bool:
    """Whether this torch lies in :data:`REPLAY_TORCH` and has the private names the replay
    needs (checked without importing torch's compiler stack)."""
    low, high = REPLAY_TORCH
    guards = getattr(getattr(torch._C, "_dynamo", None), "guards", None)
    return (low <= _torch_version() <= high
            and hasattr(guards, "_torchinductor_pyobject_tensor_data_ptr"))


class _Tap:
    """A kernel of a compiled function, called through here so that calls can be recorded."""

    recording: list[tuple[_Tap, tuple]] | None = None

    def __init__(self, kernel: Callable[..., None], argtypes: Sequence[str]):
        self.kernel = kernel
        self.argtypes = list(argtypes)

    def __call__(self, *args: Any) -> None:
        if _Tap.recording is not None:
            _Tap.recording.append((self, args))
        self.kernel(*args)

    @property
    def path(self) -> str:
        return self.kernel.__self__.__file__  # the extension module's file


@contextmanager
def kernel_taps() -> Iterator[None]:
    """While active, every CPU kernel with Python bindings that inductor loads (when a
    compiled function is built or loaded) is wrapped in a :class:`_Tap`. Kernels this
    process loaded earlier come from inductor's in-process cache, untapped."""
    from torch._inductor.codecache import CppPythonBindingsCodeCache as Cache

    original = Cache.__dict__["load_pybinding_async"]

    def tapped(cls: type, argtypes: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        future = original.__func__(cls, argtypes, *args, **kwargs)
        if cls is not Cache:
            return future
        return lambda: _Tap(future(), argtypes)

    Cache.load_pybinding_async = classmethod(tapped)
    try:
        yield
    finally:
        Cache.load_pybinding_async = original


@contextmanager
def _recording() -> Iterator[list[tuple[_Tap, tuple]]]:
    calls: list[tuple[_Tap, tuple]] = []
    _Tap.recording = calls
    try:
        yield calls
    finally:
        _Tap.recording = None


class ReplayError(Exception):
    """The recorded calls cannot be replayed (an argument of unknown origin, ...)."""


def _slots(args: tuple, group: list[list[torch.Tensor]], s: torch.Tensor) -> list[int]:
    """The replay slots of one recorded call: ``i * size + j`` for tensor ``j`` of list
    ``i``, ``n_lists * size`` for the scalar vector, ``n_lists * size + 1 + j`` for the
    size of position ``j``."""
    size = len(group[0])
    where = {id(t): i * size + j for i, lst in enumerate(group) for j, t in enumerate(lst)}
    where[id(s)] = len(group) * size
    numels = [t.numel() for t in group[0]]
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            if id(a) not in where:
                raise ReplayError("a kernel argument is a tensor that is not an input")
            out.append(where[id(a)])
        elif isinstance(a, int) and not isinstance(a, bool):
            hits = [j for j, n in enumerate(numels) if n == a]
            if len(hits) != 1:
                raise ReplayError(f"a kernel argument {a} is not the size of one input")
            out.append(len(group) * size + 1 + hits[0])
        else:
            raise ReplayError(f"a kernel argument of type {type(a).__name__}")
    return out


def _probe(size: int, n_lists: int, n_scalars: int, like: torch.Tensor, offset: int,
           generator: torch.Generator) -> tuple[list[list[torch.Tensor]], torch.Tensor]:
    """Distinct random tensors in the group layout, position ``j`` of size
    ``offset + 3 j`` (distinct within a probe, different between offsets), and a random
    scalar vector; values in [0.5, 1) keep every update finite."""
    def uniform(n: int, dtype: torch.dtype) -> torch.Tensor:
        return (torch.rand(n, generator=generator, dtype=torch.float64) / 2 + 0.5).to(
            dtype=dtype, device=like.device)

    group = [[uniform(offset + 3 * j, like.dtype) for j in range(size)]
             for _ in range(n_lists)]
    return group, uniform(n_scalars, torch.float64)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


class KernelReplay:
    """Kernel calls that replace one compiled group function: ``replay(group, s)``.

    Args:
        kernels: the kernel functions, called in order.
        slots: for each kernel, the replay slots of its arguments (see :func:`_slots`).
        mutated: the input lists the kernels write (their tensors' version counters are
            bumped once per call, as the compiled function does).
    """

    def __init__(self, kernels: Sequence[Callable[..., None]], slots: Sequence[Sequence[int]],
                 mutated: Sequence[int]):
        self.kernels = list(kernels)
        self.slots = [list(x) for x in slots]
        self.mutated = sorted(set(mutated))
        self._getters = [operator.itemgetter(*x) if len(x) > 1 else
                         (lambda pool, k=x[0]: (pool[k],)) for x in self.slots]

    def __call__(self, group: Sequence[Sequence[torch.Tensor]], s: torch.Tensor) -> None:
        pool: list[Any] = [t for lst in group for t in lst]
        pool.append(s)
        pool.extend(t.numel() for t in group[0])
        for kernel, get in zip(self.kernels, self._getters):
            kernel(*get(pool))

    def bump_versions(self, lists: Sequence[Sequence[torch.Tensor]]) -> None:
        """Mark the written lists' tensors as modified in place (for autograd's checks)."""
        torch.autograd.graph.increment_version([t for i in self.mutated for t in lists[i]])


def record(fn: Callable[..., None], size: int, n_lists: int, n_scalars: int,
           like: torch.Tensor) -> tuple[list[_Tap], list[list[int]], list[int]]:
    """The kernel calls that ``fn`` (a group function whose kernels were loaded under
    :func:`kernel_taps`) makes, as taps, argument slots and written lists; checked on two
    probes of different sizes and against ``fn`` on random data, bit for bit.

    Raises:
        ReplayError: when the calls cannot be replayed.
    """
    gen = torch.Generator().manual_seed(0)
    found = []
    for offset in (3, 5):
        group, s = _probe(size, n_lists, n_scalars, like, offset, gen)
        with _recording() as calls:
            fn(group, s)
        if not calls or not all(isinstance(tap, _Tap) for tap, _ in calls):
            raise ReplayError("the compiled function made no recordable kernel call")
        found.append(([tap for tap, _ in calls],
                      [_slots(args, group, s) for _, args in calls]))
    (taps, slots), (taps2, slots2) = found
    if taps != taps2 or slots != slots2:
        raise ReplayError("the kernel calls depend on the sizes")
    mutated = sorted({k // size for tap, x in zip(taps, slots)
                      for k, kind in zip(x, tap.argtypes)
                      if k < n_lists * size and "*" in kind and "const" not in kind})
    replay = KernelReplay([t.kernel for t in taps], slots, mutated)
    group, s = _probe(size, n_lists, n_scalars, like, 7, gen)
    copy = [[t.clone() for t in lst] for lst in group]
    fn(group, s)
    replay(copy, s)
    if not all(torch.equal(_bits(a), _bits(b))
               for la, lb in zip(group, copy) for a, b in zip(la, lb)):
        raise ReplayError("the replayed kernels disagree with the compiled function")
    return taps, slots, mutated


def _cpu() -> str:
    """The machine and the vector instruction set torch uses on it: kernels built for one
    may not run on another (a cache folder shared between machines)."""
    return f"{platform.machine()}-{torch.backends.cpu.get_cpu_capability()}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(manifest_path: Path, taps: Sequence[_Tap], slots: Sequence[Sequence[int]],
         mutated: Sequence[int]) -> None:
    """Save a recorded replay: each kernel file copied beside ``manifest_path`` (named by
    its content hash) and the manifest, written last (a partial save is never read)."""
    kernels = []
    for tap in taps:
        src = Path(tap.path)
        digest = _sha256(src)
        dst = manifest_path.parent / f"kernel-{digest[:24]}{src.suffix}"
        if not dst.exists():
            tmp = dst.with_name(dst.name + f".{os.getpid()}.tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        kernels.append({"file": dst.name, "sha256": digest})
    manifest = {"version": _MANIFEST_VERSION, "torch": torch.__version__, "cpu": _cpu(),
                "kernels": kernels,
                "slots": [list(x) for x in slots], "mutated": list(mutated)}
    tmp = manifest_path.with_name(manifest_path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest))
    os.replace(tmp, manifest_path)


_MODULES: dict[str, Any] = {}  # kernel file -> its loaded module (one import per process)


def _import_kernel(path: Path) -> Callable[..., None]:
    key = str(path)
    module = _MODULES.get(key)
    if module is None:
        # the kernel module reads the address of torch's tensor-to-pointer helper from the
        # environment when imported (as inductor passes it); this process's address
        os.environ[_ENV_DATA_PTR] = str(
            torch._C._dynamo.guards._torchinductor_pyobject_tensor_data_ptr)
        name = f"trainlab_replay_{path.stem.replace('-', '_')}.kernel"
        spec = importlib.util.spec_from_file_location(name, key)
        if spec is None or spec.loader is None:
            raise ReplayError(f"{path.name} is not an importable module")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _MODULES[key] = module
    return module.kernel


def load(manifest_path: Path, n_slots: int) -> KernelReplay:
    """The replay saved at ``manifest_path`` for groups of ``n_slots`` pool entries.

    Raises:
        ReplayError, OSError, ValueError: a missing, stale or inconsistent manifest.
    """
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("version") != _MANIFEST_VERSION or manifest.get("torch") != torch.__version__:
        raise ReplayError("the manifest was written by another trainlab or torch")
    if manifest.get("cpu") != _cpu():
        raise ReplayError(f"the kernels were built for another CPU ({manifest.get('cpu')}, "
                          f"this one is {_cpu()})")
    slots = manifest["slots"]
    if (len(slots) != len(manifest["kernels"])
            or not all(isinstance(k, int) and 0 <= k < n_slots for x in slots for k in x)):
        raise ReplayError("the manifest's argument slots do not fit the group")
    kernels = []
    for entry in manifest["kernels"]:
        path = manifest_path.parent / entry["file"]
        if _sha256(path) != entry["sha256"]:
            raise ReplayError(f"{path.name} does not match its recorded SHA-256")
        kernels.append(_import_kernel(path))
    return KernelReplay(kernels, slots, manifest["mutated"])
