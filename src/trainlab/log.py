"""The ``trainlab`` logger, through which every fallback and slower path chosen is reported.

Library code never prints: a fallback (a code path other than the one asked for or expected)
is a warning on ``logging.getLogger("trainlab")``, and :func:`warn_once` reports a fallback
that would otherwise repeat at every step or every tensor once per process and reason.
Show them with ``logging.basicConfig(level=logging.INFO)``; the CLI's messages go to stderr.
"""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("trainlab")

_WARNED: set[str] = set()


def warn_once(key: str, message: str, *args: object) -> bool:
    """Log ``message % args`` as a warning on the ``trainlab`` logger the first time ``key``
    is seen in this process; returns whether it was logged."""
    if key in _WARNED:
        return False
    _WARNED.add(key)
    LOGGER.warning(message, *args)
    return True
