"""The 119 seed papers (rows of ``papers.md``), shipped with the package."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Paper:
    row: int
    title: str
    pillars: tuple[str, ...]
    deliverable: str


@cache
def papers() -> tuple[Paper, ...]:
    text = resources.files("trainlab").joinpath("data/papers.tsv").read_text(encoding="utf-8")
    reader = csv.DictReader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    return tuple(
        Paper(int(r["row"]), r["title"], tuple(p.strip() for p in r["pillar"].split(",")),
              r["deliverable"])
        for r in reader
    )


def paper(row: int) -> Paper:
    for p in papers():
        if p.row == row:
            return p
    raise KeyError(f"papers.md has no row {row} (rows are 1..{len(papers())})")


def cite(row: int) -> str:
    """A short citation string, e.g. for docstrings and reports."""
    return f"{paper(row).title} (papers.md row {row})"
