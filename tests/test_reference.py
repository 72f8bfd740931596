"""The reference pages generated from the registries, and the strict MkDocs build of the API
reference (``make docs``)."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trainlab.papers import paper
from trainlab.reference import defaults, deviations, pages
from trainlab.registry import all_registries

ROOT = Path(__file__).resolve().parents[1]


def test_every_registry_entry_is_listed_with_its_paper_rows_and_defaults():
    out = pages()
    for kind, reg in all_registries().items():
        page = out[f"registries/{kind}.md"]
        for entry in reg.entries():
            section = page.split(f"## `{entry.name}`\n", 1)[1].split("\n## `", 1)[0]
            assert entry.summary in section
            for row in entry.papers:
                assert f"papers.md row {row}: {paper(row).title}" in section
            if entry.papers:
                assert "Deviations from the paper: " in section
            for name, value in defaults(entry.obj):
                assert f"| `{name}` | {value} |" in section
    assert set(out) >= {"registries/index.md", "api/trainlab.train.md"}


def test_defaults_and_deviations_come_from_the_implementation():
    regs = all_registries()
    table = dict(defaults(regs["probe"].get("sharpness")))
    sig = inspect.signature(regs["probe"].get("sharpness")).parameters
    assert table["max_iter"] == f"`{sig['max_iter'].default!r}`" == "`100`"
    assert table["eig_tol"] == "`None`"
    # a "Deviations:" paragraph of the module docstring, up to its end
    text = deviations(regs["probe"].get("grad-noise"))
    assert text.startswith("the paper of McCandlish et al. smooths numerator")
    assert text.endswith("(the big batch is one draw).")
    # a "Deviation:" sentence inside the class docstring
    assert deviations(regs["init"].get("siren")).startswith("the reference leaves biases")
    page = pages()["registries/probe.md"]
    assert re.search(r"Flags: .*`ddp='reduced'`", page.split("## `sharpness`", 1)[1])


@pytest.mark.slow
def test_make_docs_builds_without_warnings(tmp_path):
    """``make docs``' command: MkDocs in strict mode (a warning fails), into a scratch dir."""
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not proc.stderr.strip(), proc.stderr[-2000:]
    html = (site / "reference/registries/optimizer/index.html").read_text()
    assert "adamw" in html
    api = (site / "reference/api/trainlab.train/index.html").read_text()
    assert "RunConfig" in api and "Monitor" in api
