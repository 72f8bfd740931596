"""The diffusion-method registry: each paper's method (sampler, guidance, noise optimizer,
score estimator) with its papers.md row, so ``trainlab list diffusion`` and the papers
coverage table show them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainlab.registry import Registry

DIFFUSION: Registry[Callable[..., Any]] = Registry("diffusion")
