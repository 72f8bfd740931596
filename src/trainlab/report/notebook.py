"""Runs and comparisons shown inline in a notebook, with the plots of their HTML reports.

Jupyter (and VS Code, Colab, ...) display an object through its ``_repr_html_`` method:
:class:`~trainlab.train.RunResult` uses :func:`run_html`, and :class:`Comparison` is what
a notebook user builds for several runs. Both render the same
:class:`~trainlab.report.page.Page` as the report files (``build_run_page``,
``build_comparison_page``), as a fragment (:meth:`Page.fragment`) instead of a document.

Example (in a notebook cell)::

    result = train(steps=500)                       # displays the run report inline
    Comparison(RunStore(), ["latest", "20261128-101430-201ebf"])   # the comparison
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainlab.report.run_report import RunView, build_comparison_page, build_run_page
from trainlab.store import RunStore


def run_html(store: RunStore, run_id: str) -> str:
    """The run report of ``run_id`` as an HTML fragment (figures inline as PNG)."""
    return build_run_page(RunView.load(store, run_id)).fragment()


@dataclass(frozen=True)
class Comparison:
    """Several stored runs compared, shown inline in a notebook or written to a file.

    Args:
        store: the run store holding the runs.
        runs: run ids, prefixes, names or ``"latest"`` (resolved by ``store.resolve``).
    """

    store: RunStore
    runs: tuple[str, ...] | list[str]

    @property
    def run_ids(self) -> list[str]:
        return [self.store.resolve(r) for r in self.runs]

    def _page(self):
        return build_comparison_page([RunView.load(self.store, r) for r in self.run_ids])

    def _repr_html_(self) -> str:
        return self._page().fragment()

    def write(self, path: str | Path) -> Path:
        """The comparison report as a self-contained HTML file (what ``trainlab compare``
        writes)."""
        return self._page().write(path)
