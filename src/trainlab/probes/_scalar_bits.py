"""Python floats with the bits of torch's 0-d tensor arithmetic, so that a probe that reads
its values as floats (one ``tolist()`` per step) records what the tensor formulas would.

For float32 operands held exactly in Python floats, the float64 quotient rounded once to
float32 is the correctly rounded float32 quotient (double rounding is innocuous for a
division when the wider format has at least 2p + 2 bits: 53 >= 2 * 24 + 2). Both helpers
are tested against torch over random values and edge cases (zeros, subnormals, overflow,
infinities, NaN).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import torch


def float32(value: float) -> float:
    """``value`` rounded to the nearest float32 (ties to even; beyond its range an infinity),
    as ``torch.tensor(value, dtype=torch.float32)`` rounds it (a C conversion both)."""
    return array("f", (value,))[0]


def _same(value: float) -> float:
    return value


def rounding(dtype: torch.dtype) -> Callable[[float], float]:
    """The rounding of a float64 result to ``dtype`` (float32 or float64)."""
    return float32 if dtype == torch.float32 else _same


def quotient(num: float, den: float, dtype: torch.dtype) -> float:
    """``num / den`` as the division of two 0-d tensors of ``dtype`` holding them gives it; a
    zero divisor (an infinity or NaN, which Python would raise on) divided by torch."""
    if den == 0:
        return (torch.tensor(num, dtype=dtype) / torch.tensor(den, dtype=dtype)).item()
    return rounding(dtype)(num / den)
