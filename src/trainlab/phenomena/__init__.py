"""Each paper's headline phenomenon as a runnable experiment that checks itself."""

from trainlab.phenomena._base import Check, Outcome, Phenomenon
from trainlab.registry import Registry

PHENOMENA: Registry[type[Phenomenon]] = Registry("phenomenon")

__all__ = ["PHENOMENA", "Check", "Outcome", "Phenomenon"]
