"""Exceptions that mark a *user* error: the CLI prints them in one line and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TrainlabError(Exception):
    """Base class of trainlab's own errors."""


class UnknownNameError(TrainlabError, KeyError):
    """A name that is not in a registry; the message lists close matches and all valid names."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        valid = sorted(valid)
        close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        self.kind, self.name, self.valid, self.close = kind, name, valid, close
        msg = f"Unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(valid)}."
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]

    def __reduce__(self) -> tuple:  # picklable (a grid's worker process raises it)
        return type(self), (self.kind, self.name, self.valid)


class ConfigError(TrainlabError, ValueError):
    """An invalid value: names the parameter, the allowed range and the value received."""


class NotFiniteError(TrainlabError, ArithmeticError):
    """A computation met NaN or Inf where a number was needed (e.g. a Hessian-vector product
    on a diverging run): a result that does not exist, said as such instead of a solver's
    unrelated failure further on."""


def check_range(
    name: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    owner: str = "",
) -> float:
    """Raise :class:`ConfigError` unless ``low <= value <= high`` (bounds optional/open)."""
    bad = False
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad or value != value:  # NaN never passes
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        interval = f"{left}{lo}, {hi}{right}"
        where = f" of {owner}" if owner else ""
        raise ConfigError(
            f"The {name!r} parameter{where} must be in the range {interval}. "
            f"Got {value!r} instead."
        )
    return value


def check_betas(betas: tuple[float, ...], count: int, *, owner: str = "") -> tuple[float, ...]:
    """Raise :class:`ConfigError` unless ``betas`` has ``count`` entries, each in ``[0, 1)``
    (named ``beta1``, ``beta2``, ...); returns them as a tuple."""
    betas = tuple(betas)
    if len(betas) != count:
        where = f" of {owner}" if owner else ""
        raise ConfigError(f"The 'betas' parameter{where} must have {count} entries "
                          f"(beta1..beta{count}). Got {betas!r} instead.")
    for i, b in enumerate(betas, 1):
        check_range(f"beta{i}", b, low=0.0, high=1.0, high_open=True, owner=owner)
    return betas


def check_choice(name: str, value: object, choices: Iterable[object], *, owner: str = "") -> object:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``; returns ``value``.

    The message names the parameter, its owner, every valid choice and the value received::

        The 'mode' parameter of kaiming must be one of 'fan_in', 'fan_out'. Got 'fan' instead.
    """
    choices = tuple(choices)
    if value in choices and not (isinstance(value, bool) and not any(c is value for c in choices)):
        return value
    where = f" of {owner}" if owner else ""
    close = ""
    if isinstance(value, str):
        strs = [c for c in choices if isinstance(c, str)]
        near = difflib.get_close_matches(value, strs, n=3, cutoff=0.5)
        close = f" Did you mean {', '.join(repr(c) for c in near)}?" if near else ""
    raise ConfigError(
        f"The {name!r} parameter{where} must be one of {', '.join(repr(c) for c in choices)}. "
        f"Got {value!r} instead.{close}"
    )
