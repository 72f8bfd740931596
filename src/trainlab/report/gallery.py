"""The phenomena gallery: one page, an index of verdicts, then one section per phenomenon.

Each section shows the claim, the paper (citation and the figure or table the criterion is
read from) beside our figure, every check as ``mean +- spread (n seeds)`` against its
criterion, the runtime and mode, the regression guard of a quick run where there is one,
and the list of scale-downs. The page is built from :class:`Outcome` objects and PNG bytes,
so it is the same whether the phenomena were just run or read back from the run store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainlab.phenomena._base import Check, Outcome, Phenomenon
from trainlab.report.page import Page


@dataclass(frozen=True)
class GalleryItem:
    """One phenomenon on the page: its class, the outcome shown, the figure, and the newest
    verdicts per mode for the index (``"quick"``/``"full"`` -> outcome)."""

    phenomenon: type[Phenomenon]
    outcome: Outcome
    png: bytes | None
    verdicts: dict[str, Outcome]


def verdict(outcome: Outcome | None) -> str:
    """``PASS``/``FAIL`` with the runtime, ``FAIL (error)``, or ``-`` when never run; a
    quick run with a regression guard says whether the guard held."""
    if outcome is None:
        return "-"
    if outcome.error:
        return "FAIL (error)"
    text = f"{'PASS' if outcome.passed else 'FAIL'} {outcome.seconds:.1f}s"
    if outcome.guard:
        text += f", guard {'ok' if outcome.guard_passed else 'BROKEN'}"
    return text


def measured(c: Check) -> str:
    """``mean +- spread (n seeds)`` over seeds, the bare value for one seed."""
    if c.seeds > 1 and math.isfinite(c.spread):
        return f"{c.measured:.4g} +- {c.spread:.2g} ({c.seeds} seeds)"
    return f"{c.measured:.4g}"


def build_gallery(items: list[GalleryItem], mode: str) -> Page:
    """The gallery page of ``items`` whose sections show ``mode`` (``"quick"``/``"full"``)."""
    from trainlab.papers import cite

    passed = sum(it.outcome.passed for it in items)
    page = Page("trainlab phenomena gallery",
                f"{passed}/{len(items)} PASS in the {mode} setting")
    page.table(["phenomenon", "papers.md rows", "paper's figure", "full", "quick"],
               [(it.phenomenon.name, ", ".join(map(str, it.phenomenon.papers)),
                 it.phenomenon.paper_figure or "-", verdict(it.verdicts.get("full")),
                 verdict(it.verdicts.get("quick"))) for it in items])
    for it in items:
        p, o = it.phenomenon, it.outcome
        page.heading(f"{p.name}: {'PASS' if o.passed else 'FAIL'}")
        page.text(f"Claim: {p.claim}")
        refs = "; ".join(cite(r) for r in p.papers)
        page.text(f"Paper: {refs}. The paper's evidence: {p.paper_figure or 'not declared'}.")
        if it.png is not None:
            page.image(it.png, caption=f"ours ({o.mode} setting, seed {o.seed}), beside the "
                                       f"paper's {p.paper_figure or 'figure'}")
        if o.error:
            page.text(f"The run raised: {o.error}")
        page.table(["check", "measured", "criterion", "verdict"],
                   [(c.name, measured(c), c.expected, "PASS" if c.passed else "FAIL")
                    for c in o.checks + o.guard])
        page.text(f"Runtime {o.seconds:.1f} s ({o.mode} setting).")
        page.text("Scale-downs from the paper: "
                  + ("; ".join(p.scale_downs) if p.scale_downs else "none declared") + ".")
    return page
