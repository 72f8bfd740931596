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
from trainlab.reference import NOT_STATED, defaults, deviations, pages, rst_to_markdown
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


DOCSTRING = r"""Scale by :math:`1/\sqrt{n}` as in :func:`pages`; see
:class:`~trainlab.registry.Registry` and ``a `b` c`` or ``:func:`x```, the last role at a
line end :meth:`Registry.register`
and a role split over lines :math:`a +
b`. Left alone: 10:30, https://x.org/a:b, `code`, *emph*, **strong**, x*y, **kwargs.

.. math::
    w' = w - \eta\, g
    \quad (\eta > 0)

* a bullet with **strong** text
  * and a nested one.

Args:
    n: the width."""

MARKDOWN = r"""Scale by \(1/\sqrt{n}\) as in """ \
    r"""<autoref identifier="trainlab.reference.pages" optional><code>pages</code></autoref>; see
<autoref identifier="trainlab.registry.Registry" optional><code>Registry</code></autoref> and """ \
    r"""``a `b` c`` or `` :func:`x` ``, the last role at a
line end <autoref identifier="trainlab.registry.Registry.register" optional>""" \
    r"""<code>Registry.register</code></autoref>
and a role split over lines \(a +
b\). Left alone: 10:30, https://x.org/a:b, `code`, *emph*, **strong**, x\*y, \*\*kwargs.


\[
    w' = w - \eta\, g
    \quad (\eta > 0)
\]


* a bullet with **strong** text
  * and a nested one.

Args:
    n: the width."""


def test_rst_to_markdown_converts_roles_literals_and_math_and_leaves_the_rest():
    assert rst_to_markdown(DOCSTRING, "trainlab.reference") == MARKDOWN
    assert rst_to_markdown("plain text: a, b.", "x") == "plain text: a, b."
    # starred parameter names in an Args section stay (griffe reads them as names)
    assert rst_to_markdown("Args:\n    base, **hyper: on.\n    *args: more.") == (
        "Args:\n    base, **hyper: on.\n    *args: more.")
    # literal blocks and doctests stay verbatim ("text::" reads "text:")
    verbatim = "Usage::\n\n    y = a * b  # :func:`x`\n\n>>> t ** 2\n4\n\nAfter a * b."
    assert rst_to_markdown(verbatim) == (
        "Usage:\n\n    y = a * b  # :func:`x`\n\n>>> t ** 2\n4\n\nAfter a \\* b.")
    assert rst_to_markdown(":func:`title <trainlab.reference.pages>` :func:`!raw`") == (
        '<autoref identifier="trainlab.reference.pages" optional><code>title</code></autoref>'
        " `raw`")


def test_rst_to_markdown_output_renders_without_raw_rest():
    """What MkDocs makes of it (Python-Markdown with the site's arithmatex settings): code
    elements, MathJax spans, and no role name or double backtick left as text."""
    markdown = pytest.importorskip("markdown")
    html = markdown.markdown(rst_to_markdown(DOCSTRING, "trainlab.reference"), extensions=[
        "pymdownx.arithmatex"], extension_configs={"pymdownx.arithmatex": {
            "generic": True, "inline_syntax": ["round"], "block_syntax": ["square"]}})
    text = re.sub(r"<code>.*?</code>", "", html, flags=re.S)
    assert not re.search(r":(func|class|meth|math):|``", text), text
    assert "<code>a `b` c</code>" in html and "<code>:func:`x`</code>" in html
    assert html.count('<span class="arithmatex">') == 2
    assert html.count('<div class="arithmatex">') == 1
    assert "<em>emph</em>" in html and "<strong>strong</strong>" in html
    assert "x*y" in html and "**kwargs" in html
    assert html.count("<li>") == 2  # the bullets stay a list


def test_deviations_heading_forms():
    """A heading ending its line reads the indented section below it, or the paragraph when
    the next line is not indented; a heading with nothing after it gives way to the next."""

    def doc(text):
        def f():
            pass
        f.__doc__ = text
        f.__module__ = "no.such.module"
        return f

    section = doc("Summary.\n\nDeviations from the paper:\n    one,\n    two.\n\nArgs:\n    x: y.")
    assert deviations(section) == "one, two."
    flat = doc("Summary.\n\nScale-downs and deviations:\nCIFAR -> toy,\nfewer steps.\n\nMore.")
    assert deviations(flat) == "CIFAR -> toy, fewer steps."
    empty_first = doc("Deviations from the paper:\n\nText.\n\nDeviations: none known.")
    assert deviations(empty_first) == "none known."
    assert deviations(doc("No such paragraph; standard deviation: 2.")) == ""


def test_pages_tell_a_missing_deviations_paragraph_from_none():
    """A docstring's "Deviations: none ..." is shown as written; a docstring without the
    paragraph is shown as not stated. Prints the entries still without one."""
    missing = []
    out = pages()
    for kind, reg in all_registries().items():
        page = out[f"registries/{kind}.md"]
        for entry in reg.entries():
            if not entry.papers:
                continue
            section = page.split(f"## `{entry.name}`\n", 1)[1].split("\n## `", 1)[0]
            stated = deviations(entry.obj)
            assert (f"Deviations from the paper: {NOT_STATED}" in section) == (not stated)
            if not stated:
                missing.append(f"{kind}/{entry.name}")
    lsuv = out["registries/init.md"].split("## `lsuv`", 1)[1]
    assert "Deviations from the paper: none from the paper's Algorithm 1." in lsuv
    print(f"{len(missing)} paper-citing registry entries without a Deviations paragraph:",
          " ".join(missing))


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
    # the docstrings' reST (griffe extension in docs/hooks.py): no raw role outside code
    optim = (site / "reference/api/trainlab.optim/index.html").read_text()
    assert not re.search(r":(math|func|class|meth):`", re.sub(r"<code>.*?</code>", "", optim))
    assert 'class="arithmatex"' in optim and 'class="autorefs autorefs-internal"' in optim
