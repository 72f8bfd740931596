r"""Per-point parameter Jacobians of PDE residuals for a tanh MLP, in one batched pass.

The generic path (:meth:`trainlab.pinn.model.PinnModel.output_jacobian` of a model built
with ``taylor=False``) nests ``torch.func`` transforms: ``vmap`` over points of ``jacrev`` over
parameters of ``jacfwd(jacrev)`` over inputs. For a network that is a chain of
``nn.Linear`` layers and ``tanh`` activations the same numbers come from two batched passes
over all points at once, without per-point transforms:

Forward (Taylor mode to second order). Each layer carries, per point, the value :math:`a`,
its input derivatives :math:`\partial_i a` and :math:`\partial_i\partial_j a`
(:math:`S = 1 + d + d^2` *streams*). A linear layer maps every stream by :math:`W` (the
bias enters the value stream only); :math:`s = \tanh(z)` maps them by

.. math::  s,\quad \partial_i s = s'\,\partial_i z,\quad
           \partial_i\partial_j s = s'\,\partial_i\partial_j z
           + s''\,\partial_i z\,\partial_j z, \qquad s' = 1 - s^2,\ s'' = -2 s s'.

The network's output streams are the :class:`~trainlab.pinn.derivatives.Jet` the problem's
term turns into residuals :math:`r_n` (any row-wise function of the jet).

Backward (per-point gradients). Because :math:`r_n` depends only on point :math:`n`'s
streams, one reverse pass of :math:`\sum_n r_n` gives each point's own gradient
:math:`g^{(l)}_{n,s} = \partial r_n / \partial z^{(l)}_{n,s}` for every layer's
pre-activation streams; the per-point Jacobian of layer :math:`l`'s parameters is then

.. math::  \frac{\partial r_n}{\partial W^{(l)}} = \sum_s g^{(l)}_{n,s}\,
           (a^{(l-1)}_{n,s})^\top, \qquad
           \frac{\partial r_n}{\partial b^{(l)}} = g^{(l)}_{n,\mathrm{value}},

a batched matrix product over the streams. The result equals the generic path's to
rounding (tested in float64); for Burgers' 8400 points and 1981 parameters it takes about
a tenth of the generic path's CPU time (``benchmarks/pinn.py`` docstring).

Applies to a :class:`torch.nn.Sequential` of ``Flatten`` (on 2-D input), ``Linear`` and
``Tanh`` modules, a soft constraint and no periodic embedding (:func:`applicable`);
:class:`~trainlab.pinn.model.PinnModel` then uses it for its residuals (forward) and
Jacobians, other models use the generic path.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.pinn.derivatives import Jet

log = logging.getLogger("trainlab")

CHUNK = 512  # rows per pass, so the streams stay in cache (measured on Burgers' network,
#              8000 rows, 1 thread: Jacobian 0.44 CPU s in one pass, 0.32 s in chunks of 500;
#              forward 0.08 s and 0.05 s)


def applicable(model: nn.Module) -> bool:
    """Whether ``model`` (a :class:`~trainlab.pinn.model.PinnModel`) is a soft-constrained
    tanh MLP on unembedded coordinates, the case this module computes."""
    net = getattr(model, "net", None)
    if not isinstance(net, nn.Sequential) or model.constraint != "soft":
        return False
    if model.problem.periodic:
        return False
    kinds = [type(m) for m in net]
    return (nn.Linear in kinds and kinds[-1] is nn.Linear
            and all(k in (nn.Flatten, nn.Linear, nn.Tanh) for k in kinds))


def streams_read(term, d: int, m: int) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """The input derivatives ``term.residual`` reads: the first-derivative coordinates and the
    second-derivative pairs ``(i, j)``, ``i <= j``, in ``d`` coordinates and ``m`` outputs;
    the coordinates of every pair are among the first ones (the pass needs them).

    Found by differentiating the residual of a random jet at 3 random points (a local
    generator) with respect to the jet: a derivative is read where its gradient is nonzero.
    Burgers' PDE term reads ``u_t``, ``u_x`` and ``u_xx`` only, so its pass carries 4 streams
    instead of ``1 + d + d^2 = 7``. Where the probe fails (a residual autograd cannot
    differentiate), every derivative of the term's order is taken, with a warning on the
    ``trainlab`` logger."""
    order = term.order
    every = (tuple(range(d)) if order >= 1 else (),
             tuple((i, j) for i in range(d) for j in range(i, d)) if order >= 2 else ())
    if order == 0:
        return every
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode(False), torch.enable_grad():
        u = torch.rand(3, m, dtype=torch.float64, generator=gen).requires_grad_(True)
        g = torch.rand(3, m, d, dtype=torch.float64, generator=gen).requires_grad_(True)
        h = (torch.rand(3, m, d, d, dtype=torch.float64, generator=gen)
             if order >= 2 else None)
        if h is not None:
            h = (h + h.transpose(2, 3)).requires_grad_(True)
        x = torch.rand(3, d, dtype=torch.float64, generator=gen)
        try:
            r = term.residual(Jet(u, g, h), x)
            weights = torch.rand(r.shape, dtype=r.dtype, generator=gen) + 0.5
            grads = torch.autograd.grad((r * weights).sum(), [g] + ([h] if h is not None
                                                                    else []),
                                        allow_unused=True)
        except (RuntimeError, TypeError, ValueError) as exc:
            log.warning("mlp_taylor: could not find the derivatives term %r reads (%s); "
                        "computing all of them", getattr(term, "name", term), exc)
            return every
    used = [torch.zeros(d, dtype=torch.bool) if t is None else (t != 0).flatten(0, 1).any(0)
            for t in grads]
    pairs = ()
    if h is not None:
        sym = used[1] | used[1].T
        pairs = tuple((i, j) for i in range(d) for j in range(i, d) if bool(sym[i, j]))
    first = tuple(i for i in range(d) if bool(used[0][i]) or any(i in q for q in pairs))
    return first, pairs


def _needs(model: nn.Module, index: int, d: int) -> tuple[tuple[int, ...],
                                                          tuple[tuple[int, int], ...]]:
    """:func:`streams_read` of term ``index`` (``-1``: the solution, value only), cached on
    the model."""
    if index == -1:
        return (), ()
    cache = model.__dict__.setdefault("_taylor_streams", {})
    if index not in cache:
        cache[index] = streams_read(model.terms[index], d, model.width)
    return cache[index]


def _streams(x: torch.Tensor, first: tuple[int, ...], pairs: tuple[tuple[int, int], ...]
             ) -> torch.Tensor:
    """The input's streams ``(N, S, d)``: value, the unit first derivatives along
    ``first`` and zero second derivatives, one per pair of ``pairs``."""
    n, d = x.shape
    parts = [x[:, None, :]]
    if first:
        eye = torch.eye(d, dtype=x.dtype, device=x.device)[list(first)]
        parts.append(eye.expand(n, len(first), d))
    if pairs:
        parts.append(x.new_zeros(n, len(pairs), d))
    return torch.cat(parts, 1)


def _tanh(z: torch.Tensor, first: tuple[int, ...], pairs: tuple[tuple[int, int], ...]
          ) -> torch.Tensor:
    """``tanh`` applied to streams ``z`` ``(N, S, h)`` laid out as :func:`_streams`."""
    s = torch.tanh(z[:, :1])
    if not first:
        return s
    s1 = 1 - s * s
    f = len(first)
    z1 = z[:, 1:1 + f]
    parts = [s, s1 * z1]
    if pairs:
        s2 = -2 * s * s1
        z2 = z[:, 1 + f:]
        pos = {c: k for k, c in enumerate(first)}
        left = z1[:, [pos[i] for i, _ in pairs]]
        right = z1[:, [pos[j] for _, j in pairs]]
        parts.append(s1 * z2 + s2 * (left * right))
    return torch.cat(parts, 1)


def _jet(a: torch.Tensor, d: int, first: tuple[int, ...],
         pairs: tuple[tuple[int, int], ...], order: int) -> Jet:
    """The output streams ``a`` ``(N, S, m)`` as a :class:`Jet` to ``order``; derivatives
    the term does not read are zero."""
    u = a[:, 0]
    if order == 0:
        return Jet(u)
    zero = torch.zeros_like(u)
    pos = {c: 1 + k for k, c in enumerate(first)}
    grad = torch.stack([a[:, pos[i]] if i in pos else zero for i in range(d)], 2)
    if order == 1:
        return Jet(u, grad)
    where = {}
    for k, (i, j) in enumerate(pairs):
        where[i, j] = where[j, i] = 1 + len(first) + k
    hess = torch.stack([a[:, where[i, j]] if (i, j) in where else zero
                        for i in range(d) for j in range(d)], 2)
    return Jet(u, grad, hess.reshape(len(a), -1, d, d))


def _forward(model: nn.Module, index: int, x: torch.Tensor,
             params: dict[str, torch.Tensor] | None, record: list | None) -> torch.Tensor:
    """Residuals ``(N, width)`` of term ``index`` (``-1``: the solution) at points ``x``
    ``(N, d)``; the layers' weights from ``params`` where named there (detached), else the
    modules' own (live, so the result is differentiable in them); with ``record``, each
    linear layer's ``(index, input streams, pre-activation streams)`` is appended. Only the
    streams of the derivatives the term reads are carried (:func:`streams_read`)."""
    term = None if index == -1 else model.terms[index]
    order = 0 if term is None else term.order
    d = x.shape[1]
    first, pairs = _needs(model, index, d)
    a = _streams(x, first, pairs)
    if record is not None:
        a.requires_grad_(True)  # roots the graph: the recorded streams get gradients
    for i, m in enumerate(model.net):
        if isinstance(m, nn.Linear):
            w, b = m.weight, m.bias
            if params is not None:
                w = params.get(f"net.{i}.weight", w).detach()
                b = None if b is None else params.get(f"net.{i}.bias", b).detach()
            z = a @ w.T
            if record is not None:
                record.append((i, a.detach(), z))
            a = z if b is None else torch.cat([z[:, :1] + b, z[:, 1:]], 1)
        elif isinstance(m, nn.Tanh):
            a = _tanh(a, first, pairs)
    r = a[:, 0] if term is None else term.residual(_jet(a, d, first, pairs, order), x)
    if r.shape[1] > model.width:
        raise ConfigError(f"term {term.name!r} has {r.shape[1]} residual components, more "
                          f"than the {model.width} outputs")
    return torch.nn.functional.pad(r, (0, model.width - r.shape[1]))


def term_residual(model: nn.Module, index: int, x: torch.Tensor) -> torch.Tensor:
    """Residuals of term ``index`` (``-1``: the solution) of ``model`` at points ``x``
    ``(N, d)``, ``(N, width)``, from the Taylor-mode forward pass (differentiable in the
    network's parameters and in ``x``), over chunks of :data:`CHUNK` rows. Needs
    :func:`applicable`."""
    return torch.cat([_forward(model, index, part, None, None)
                      for part in (torch.split(x, CHUNK) or (x,))])


def term_jacobian(model: nn.Module, index: int, x: torch.Tensor,
                  params: dict[str, torch.Tensor], out: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Residuals of term ``index`` (``-1``: the solution) of ``model`` at points ``x``
    ``(N, d)`` and their per-point Jacobians, ``((N, width), (N, width, P))``, the parameters
    flattened in the order of ``params`` (names as in ``model.named_parameters()``; the
    network's own values for those not in ``params``); the Jacobians are written into
    ``out`` (an ``(N, width, P)`` tensor) when given, which is returned. Needs
    :func:`applicable`."""
    record: list = []
    with torch.enable_grad():
        r = _forward(model, index, x, params, record)
        sizes = {n: p.numel() for n, p in params.items()}
        offsets = dict(zip(sizes, [0, *torch.tensor(list(sizes.values())).cumsum(0).tolist()]))
        shape = (len(x), r.shape[1], sum(sizes.values()))
        if out is not None and tuple(out.shape) != shape:
            raise ConfigError(f"term_jacobian: out has shape {tuple(out.shape)}, needs {shape}")
        jac = x.new_empty(shape) if out is None else out
        for c in range(r.shape[1]):
            g = torch.autograd.grad(r[:, c].sum(), [z for _, _, z in record],
                                    retain_graph=True, allow_unused=True)
            for (i, ain, z), gz in zip(record, g):
                gz = torch.zeros_like(z) if gz is None else gz
                for name in (f"net.{i}.weight", f"net.{i}.bias"):
                    if name in sizes:  # (N, out, in): sum over streams of g a^T; bias: g
                        block = (torch.bmm(gz.transpose(1, 2), ain) if name.endswith("weight")
                                 else gz[:, 0])
                        jac[:, c, offsets[name]:offsets[name] + sizes[name]] = (
                            block.reshape(len(x), -1))
    return r.detach(), jac
