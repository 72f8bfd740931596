"""Each paper's headline phenomenon as a runnable experiment that checks itself."""

from trainlab.registry import Registry

PHENOMENA: Registry = Registry("phenomenon")

__all__ = ["PHENOMENA"]
