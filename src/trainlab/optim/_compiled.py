"""Element-wise optimizer updates compiled into fused kernels by ``torch.compile`` (inductor):
the ``fused=True`` path of trainlab's Adam-like optimizers.

torch's own ``fused=True`` optimizers are hand-written C++ kernels; a method torch does not
have gets the same thing here by compiling its per-tensor update, written once with ordinary
tensor ops, into one loop over memory per tensor: every buffer is read (and written) once,
with no temporaries. On the benchmark machine that brings AdEMAMix from 2.3x to about 1.4x
the time of ``torch.optim.AdamW(fused=True)``, whose traffic it exceeds by 9/7.

Design:
- The update is ``update(*tensors, scalars)`` for one tensor and its state, in place;
  ``scalars`` is a float64 vector holding every hyperparameter of the step (learning rate,
  bias corrections, ...), so a new lr or step count is new data, never a recompilation.
- Tensors go in fixed-size groups of ``GROUP_SIZE`` per call (a list of ``GROUP_SIZE``
  tensors per operand), the last group padded with 2-element scratch tensors, so a model of
  500 small tensors costs 32 calls, not 500, and one compiled graph serves every model.
- Shapes are dynamic and not "duck-sized" (equal sizes get no shared symbol), so which
  tensors happen to have equal sizes never triggers a recompilation; a dtype does (one
  graph per dtype).

Precompiled kernels and the compile cache. ``torch.compile`` pays, in every new process,
for tracing the update with dynamo (10-40 s for a group of 16 on the loaded 2-core benchmark
machine) even when inductor's on-disk caches hold the kernel, and at every call for
checking its guards over every tensor (about 17 us per tensor there, as much as the kernel
of a 20k-element tensor). Where torch offers ahead-of-time compiled functions
(``torch.compile(...).aot_compile`` and ``torch.compiler.load_compiled_function``, an
experimental API, used only on the torch versions in :data:`PRECOMPILE_TORCH`), each group
function is compiled once, saved under :func:`compile_cache_dir` (keyed by the update's
module, name and bytecode, the group size, the number of lists, dtype, device type and
torch version) and loaded by later processes without tracing; the guards are then checked
once per step (on its first group) instead of at every call, the others having the
structure :func:`can_fuse` and the grouping guarantee. A failed guard check runs that step
through ``torch.compile``; a failed save or load warns once on the ``trainlab`` logger and
uses ``torch.compile`` (the public path, always available, and what older or newer torch
versions get). Both paths run the same inductor kernel: the same numbers, bit for bit.

Replayed kernels (CPU). On the CPU, the process that builds or loads a precompiled group
function also records the C++ kernels it calls and how its arguments map onto the group's
tensors, scalars and sizes, checks that record bit for bit, and saves it beside the compiled
function (:mod:`trainlab.optim._kernel_replay`, private inductor details, same version gate,
``KernelReplay``). Later processes then call those kernels directly: the first step no
longer imports torch's compiler stack or unpickles the compiled function (about 5 s of the
first step on the loaded benchmark machine, 0.03 s after), and each group costs one C call
instead of the compiled function's Python wrappers. Tensors reach the kernels as they are
(their data pointers and sizes; :func:`can_fuse` guarantees the layout); written tensors get
their autograd version counters bumped as the compiled function does. Any failure to record,
save or load a replay warns once and uses the precompiled function; the replay is not used
for a step whose first group holds two tensors with the same data (the precompiled
function's guards then decide). Order of the paths per dtype and device: the replay, else the
precompiled function, else ``torch.compile``.

The cache folder is ``$TRAINLAB_COMPILE_CACHE`` when set, else
``$XDG_CACHE_HOME/trainlab/compile`` (``~/.cache/trainlab/compile``). While trainlab
compiles or loads, inductor's own cache (the generated C++ and the built libraries) goes to
its ``inductor`` subfolder, unless ``TORCHINDUCTOR_CACHE_DIR`` names another folder than
torch's default (then that is used); the variable is restored afterwards, so the caller's
own ``torch.compile`` calls keep their cache.

Costs: the first step in a process without a cache compiles (5-30 s on a laptop-class CPU,
minutes on the loaded benchmark machine) and needs a working C++ compiler; a compile
failure raises :class:`~trainlab.errors.ConfigError` before any tensor is touched. With a
warm cache the first step costs the import of the replayed kernels' modules, or where there
is no replay the import of torch's compiler stack and the loading of the compiled function
(``benchmarks/first_step.py``); inductor's probe of each CPU vector instruction set (a
compiler run and a Python subprocess each) is skipped while a kernel built earlier is loaded
(``torch._inductor.config.cpp.vec_isa_ok``; the instruction sets still come from the CPU's
flags). Inductor remembers the resulting list for the process, so a ``torch.compile`` of the
caller's own that follows also skips the probe. Results match the eager reference to rounding
(inductor may contract or reorder floating-point operations).
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from trainlab.errors import ConfigError
from trainlab.optim import _kernel_replay
from trainlab.optim._fused_adam import _torch_version
from trainlab.optim._kernel_replay import KernelReplay, replay_available

LOG = logging.getLogger("trainlab")

GROUP_SIZE = 16
#: torch releases (major, minor) whose ahead-of-time compiled functions trainlab was tested
#: with (the lowest and the highest); other versions use ``torch.compile`` alone
PRECOMPILE_TORCH = ((2, 13), (2, 13))
_PAD_ELEMENTS = 2  # not 0 or 1: those sizes are specialized by torch.compile
_PLAIN = (torch.Tensor, torch.nn.Parameter)  # the tensor types the kernel replay takes


def lerp_(start: torch.Tensor, end: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``start.lerp_(end, weight)`` inside a compiled update, with the 0-dim weight taken
    from the float64 ``scalars`` vector cast to ``start``'s dtype first.

    Every other element-wise op of an update mixes a float32 tensor with a float64 0-dim
    tensor by type promotion (the scalar is rounded to float32, as in eager mode), but
    torch 2.6's ``torch.compile`` rejects a ``lerp_`` weight of another dtype than its
    tensors (torch 2.13's accepts it). Casting first is that same rounding: on torch 2.13
    the compiled float32 and float64 results of every fused optimizer are bit for bit those
    of the uncast weight (measured; tests/optim/test_fused.py checks them against the
    eager references)."""
    return start.lerp_(end, weight.to(start.dtype))


def can_fuse(*lists: Sequence[torch.Tensor]) -> bool:
    """Whether :class:`CompiledUpdate` takes these aligned lists: dense, contiguous, floating
    tensors of at least 2 elements, one dtype and device throughout, equal sizes along each
    position."""
    if not lists or not lists[0] or not lists[0][0].is_floating_point():
        return False
    dtype, device, n = lists[0][0].dtype, lists[0][0].device, len(lists[0])
    sizes = [t.numel() for t in lists[0]]
    if min(sizes) < _PAD_ELEMENTS:
        return False
    for lst in lists:
        if (len(lst) != n or [t.numel() for t in lst] != sizes
                or not all(t.dtype == dtype and t.device == device and t.is_contiguous()
                           and t.layout == torch.strided for t in lst)):
            return False
    return True


def compile_cache_dir() -> Path:
    """Where compiled updates are kept: ``$TRAINLAB_COMPILE_CACHE``, else
    ``$XDG_CACHE_HOME/trainlab/compile`` (default ``~/.cache/trainlab/compile``)."""
    env = os.environ.get("TRAINLAB_COMPILE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "trainlab" / "compile"


def _torch_default_inductor_dir() -> str | None:
    """The folder torch's inductor picks (and writes into ``TORCHINDUCTOR_CACHE_DIR`` when it
    is first imported) when nobody chose one; ``None`` if this torch does not say."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # another torch layout: only an unset variable counts as unchosen
        return None
    return os.path.abspath(default_cache_dir())


@contextmanager
def _inductor_cache() -> Iterator[None]:
    """Inductor's cache in :func:`compile_cache_dir`'s ``inductor`` subfolder for the
    duration, unless the caller set ``TORCHINDUCTOR_CACHE_DIR`` to another folder than
    torch's default (which torch itself writes into the variable on import) or the
    subfolder cannot be made; the variable is restored afterwards."""
    key = "TORCHINDUCTOR_CACHE_DIR"
    before = os.environ.get(key)
    ours = compile_cache_dir() / "inductor"
    if before is not None and before != _torch_default_inductor_dir():
        yield
        return
    try:
        ours.mkdir(parents=True, exist_ok=True)
    except OSError:  # not writable: inductor keeps its own folder (only persistence is lost)
        yield
        return
    os.environ[key] = str(ours)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def precompile_available() -> bool:
    """Whether this torch has ahead-of-time compiled functions and lies in
    :data:`PRECOMPILE_TORCH`."""
    low, high = PRECOMPILE_TORCH
    return (hasattr(torch.compiler, "load_compiled_function")
            and low <= _torch_version() <= high)


def _code_digest(fn: Callable[..., Any]) -> str:
    """A digest of ``fn``'s bytecode and constants (an edited update gets a new key)."""
    code = fn.__code__
    return hashlib.sha256(code.co_code + repr(code.co_consts).encode()
                          + repr(code.co_names).encode()).hexdigest()[:16]


def _flat(t: torch.Tensor) -> torch.Tensor:
    """``t`` as a 1-D tensor without autograd history (so a parameter and a state buffer
    look alike to the compiled graph's guards)."""
    if t.dim() != 1:
        t = t.view(-1)
    return t.detach() if t.requires_grad else t


class CompiledUpdate:
    """A per-tensor, in-place, element-wise update compiled once (lazily, at the first call)
    and applied to lists of tensors in groups of :data:`GROUP_SIZE`.

    Args:
        update: ``update(*tensors, scalars) -> None`` for one tensor of each list (for
            example ``(param, grad, exp_avg, exp_avg_sq)``), writing in place; ``scalars`` is
            the step's float64 hyperparameter vector.
        name: the method's name, for error messages.
    """

    def __init__(self, update: Callable[..., None], name: str):
        self.update = update
        self.name = name
        self._compiled: dict[int, Callable[..., None]] = {}
        self._pads: dict[tuple, list[list[torch.Tensor]]] = {}
        self._warm: set[tuple] = set()
        self._precompiled: dict[tuple, Any] = {}  # key -> AOTCompiledFunction (or None)
        self._replays: dict[tuple, KernelReplay | None] = {}
        self.precompile = precompile_available()  # tests switch it off for the public path
        self.replay = replay_available()  # the kernels called directly (CPU, tested torch)

    def _group_fn(self, size: int) -> Callable[..., None]:
        fn = self._compiled.get(size)
        if fn is None:
            # no per-call size asserts in inductor's wrapper: shapes are checked by can_fuse
            fn = torch.compile(self._apply_group(), fullgraph=True, dynamic=True,
                               options={"size_asserts": False})
            self._compiled[size] = fn
        return fn

    def _apply_group(self) -> Callable[..., None]:
        update = self.update

        def apply_group(lists: list[list[torch.Tensor]], scalars: torch.Tensor) -> None:
            for tensors in zip(*lists):
                update(*tensors, scalars)

        return apply_group

    def _cache_path(self, key: tuple) -> Path:
        size, n_lists, dtype, device = key
        u = self.update
        name = (f"{u.__module__}.{u.__qualname__}-{_code_digest(u)}-g{size}-n{n_lists}-"
                f"{str(dtype).replace('torch.', '')}-{device.type}-torch{torch.__version__}")
        return compile_cache_dir() / "precompiled" / (name.replace("/", "_") + ".bin")

    def _precompiled_fn(self, key: tuple, scratch: list[list[torch.Tensor]],
                        s: torch.Tensor) -> Any:
        """The ahead-of-time compiled group function for ``key``: loaded from the cache, or
        compiled on ``scratch`` and saved; ``None`` (after one warning) when that fails."""
        if key in self._precompiled:
            return self._precompiled[key]
        import torch._inductor.config
        import torch.fx.experimental._config as fx_config

        path = self._cache_path(key)
        fn = None
        tap = self._taps(key)
        with _inductor_cache(), warnings.catch_warnings(), tap:
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                if path.exists():
                    # built here before, after inductor's checks: skip its compile-and-load
                    # probe of every CPU vector ISA (the ISAs still come from the CPU flags)
                    with torch._inductor.config.patch({"cpp.vec_isa_ok": True}):
                        with open(path, "rb") as f:
                            fn = torch.compiler.load_compiled_function(f)
                        fn(scratch, s)
                else:
                    with fx_config.patch(use_duck_shape=False):
                        fn = torch.compile(self._apply_group(), fullgraph=True, dynamic=True,
                                           options={"size_asserts": False}
                                           ).aot_compile(((scratch, s), {}))
                    fn(scratch, s)
                    self._save(fn, path)
            except Exception as exc:  # experimental API: any failure means "not this way"
                first = str(exc).splitlines()[0] if str(exc) else ""
                LOG.warning("fused=True for %s: the ahead-of-time compiled update could not "
                            "be %s (%s: %s); using torch.compile (same kernel, slower first "
                            "step and calls).", self.name,
                            "loaded" if path.exists() else "built", type(exc).__name__, first)
                fn = None
        if fn is not None:
            if not isinstance(tap, nullcontext):
                self._replays[key] = self._record_replay(fn, key, len(s), scratch[0][0])
            fn.disable_guard_check()  # checked once per step in __call__
        self._precompiled[key] = fn
        return fn

    def _replay_path(self, key: tuple) -> Path:
        return self._cache_path(key).with_suffix(".replay.json")

    def _taps(self, key: tuple) -> Any:
        """:func:`~trainlab.optim._kernel_replay.kernel_taps` where a replay may be recorded
        for ``key`` (CPU, tested torch, none loaded), else a context that does nothing."""
        if self.replay and key[3].type == "cpu" and self._replays.get(key) is None:
            return _kernel_replay.kernel_taps()
        return nullcontext()

    def _record_replay(self, fn: Any, key: tuple, n_scalars: int, like: torch.Tensor
                       ) -> KernelReplay | None:
        """Record ``fn``'s kernel calls as a replay, save it for later processes and load it
        back; ``None`` (after one warning) when that fails."""
        size, n_lists = key[0], key[1]
        path = self._replay_path(key)
        try:
            taps, slots, mutated = _kernel_replay.record(fn, size, n_lists, n_scalars, like)
            _kernel_replay.save(path, taps, slots, mutated)
            return _kernel_replay.load(path, n_lists * size + 1 + size)
        except Exception as exc:  # private inductor details: any failure means "no replay"
            LOG.warning("fused=True for %s: the compiled kernels could not be set up for "
                        "direct calls (%s: %s); using the precompiled function (same "
                        "kernels, slower first step in new processes and calls).",
                        self.name, type(exc).__name__, exc)
            return None

    def _loaded_replay(self, key: tuple) -> KernelReplay | None:
        """The replay saved for ``key`` by an earlier process, if any (one warning when a
        saved one cannot be loaded); looked up once per key. ``None`` while :attr:`replay`
        is off."""
        if not self.replay:
            return None
        if key in self._replays:
            return self._replays[key]
        replay = None
        path = self._replay_path(key)
        if self.precompile and key[3].type == "cpu" and path.exists():
            try:
                replay = _kernel_replay.load(path, key[1] * key[0] + 1 + key[0])
            except (_kernel_replay.ReplayError, OSError, ValueError, KeyError, TypeError,
                    ImportError) as exc:
                LOG.warning("fused=True for %s: the saved kernel replay %s could not be "
                            "loaded (%s: %s); using the precompiled function.", self.name,
                            path.name, type(exc).__name__, exc)
        self._replays[key] = replay
        return replay

    def _save(self, fn: Any, path: Path) -> None:
        """Save a compiled group function for later processes; a folder that cannot be
        written only costs them the compilation (one warning)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fn.save_compiled_function(str(path))
        except (OSError, RuntimeError) as exc:
            LOG.warning("fused=True for %s: the compiled update could not be saved in %s "
                        "(%s: %s); later processes compile it again (set "
                        "TRAINLAB_COMPILE_CACHE to a writable folder).", self.name,
                        path.parent, type(exc).__name__, exc)

    def _padding(self, size: int, n_lists: int, like: torch.Tensor
                 ) -> list[list[torch.Tensor]]:
        key = (size, n_lists, like.dtype, like.device)
        pads = self._pads.get(key)
        if pads is None:  # one distinct scratch tensor per slot: inputs never alias
            pads = [[torch.zeros(_PAD_ELEMENTS, dtype=like.dtype, device=like.device)
                     for _ in range(size)] for _ in range(n_lists)]
            self._pads[key] = pads
        return pads

    def __call__(self, lists: Sequence[Sequence[torch.Tensor]], scalars: Sequence[float]
                 ) -> None:
        """Apply the update to every position of the aligned ``lists`` (checked with
        :func:`can_fuse` by the caller) with the step's ``scalars``. Tensors are passed as
        flat views, so one graph serves every shape."""
        import torch.fx.experimental._config as fx_config

        size = GROUP_SIZE
        ref = lists[0][0]
        s = torch.tensor(list(scalars), dtype=torch.float64, device=ref.device)
        pads = self._padding(size, len(lists), ref)
        n = len(lists[0])
        key = (size, len(lists), ref.dtype, ref.device)
        replay = self._loaded_replay(key)
        if replay is None and self.precompile and key not in self._precompiled:
            self._precompiled_fn(key, self._scratch(size, len(lists), ref), s)
            replay = self._replays.get(key)
        if replay is not None and self._replay_step(replay, lists, pads, s):
            return
        groups = []
        for a in range(0, n, size):
            group = [[_flat(t) for t in lst[a:a + size]] for lst in lists]
            short = size - len(group[0])
            if short:
                group = [g + pad[:short] for g, pad in zip(group, pads)]
            groups.append(group)
        pre = self._precompiled.get(key)
        if pre is None and self.precompile and key not in self._precompiled:
            pre = self._precompiled_fn(key, self._scratch(size, len(lists), ref), s)
        # the guards of the precompiled function, once per step: the other groups have the
        # same structure (can_fuse, the grouping); a mismatch runs this step by torch.compile
        if pre is not None and pre.guard_check(groups[0], s):
            for group in groups:
                pre(group, s)
            return
        with fx_config.patch(use_duck_shape=False):
            fn = self._ready(size, len(lists), ref, s)
            # After the warm-up call every call has the compiled structure (checked by
            # can_fuse and the grouping), so only the guards that tell graphs apart run.
            with torch.compiler.set_stance("default", skip_guard_eval_unsafe=True):
                for group in groups:
                    fn(group, s)

    @staticmethod
    def _replay_step(replay: KernelReplay, lists: Sequence[Sequence[torch.Tensor]],
                     pads: list[list[torch.Tensor]], s: torch.Tensor) -> bool:
        """One step by the replayed kernels (tensors as they are: a kernel sees only their
        data and sizes), unless a tensor is not a plain ``Tensor`` or ``Parameter`` (a
        subclass may hold no data of its own) or two tensors of the first group share their
        data (the precompiled function's guards would reject both too): then ``False``,
        nothing touched."""
        size, n = len(pads[0]), len(lists[0])
        if not all(type(t) in _PLAIN for lst in lists for t in lst):
            return False
        first = [t for lst in lists for t in lst[:size]]
        if len({t.data_ptr() for t in first}) != len(first):
            return False
        for a in range(0, n, size):
            group = [lst[a:a + size] for lst in lists]
            short = size - len(group[0])
            if short:
                group = [list(g) + pad[:short] for g, pad in zip(group, pads)]
            replay(group, s)
        replay.bump_versions(lists)
        return True

    @staticmethod
    def _scratch(size: int, n_lists: int, like: torch.Tensor) -> list[list[torch.Tensor]]:
        """Distinct zero tensors in the group layout (compiling never touches user data)."""
        return [[torch.zeros(_PAD_ELEMENTS + 1, dtype=like.dtype, device=like.device)
                 for _ in range(size)] for _ in range(n_lists)]

    def _ready(self, size: int, n_lists: int, like: torch.Tensor, s: torch.Tensor
               ) -> Callable[..., None]:
        """The compiled group function, compiled (on scratch tensors, so a compiler failure
        leaves the caller's tensors untouched) the first time a dtype/device is seen."""
        fn = self._group_fn(size)
        key = (size, n_lists, like.dtype, like.device)
        if key not in self._warm:
            scratch = self._scratch(size, n_lists, like)
            try:
                # torch's compiler stack warns about itself
                with _inductor_cache(), warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    fn(scratch, s)
            except Exception as exc:  # inductor raises many types; all mean "cannot fuse"
                first = str(exc).splitlines()[0] if str(exc) else ""
                raise ConfigError(
                    f"fused=True for {self.name} compiles its update with torch.compile, "
                    f"which failed here ({type(exc).__name__}: {first}); use fused=False"
                ) from exc
            self._warm.add(key)
        return fn
