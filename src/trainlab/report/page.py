"""A self-contained HTML page built from typed blocks (text, tables, figures).

Every HTML output of trainlab (run reports, comparisons, the init inspector, the phenomena
gallery) is a :class:`Page`: callers add blocks, and one renderer turns them into a single
file with the plots embedded as PNG data URIs, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str
    css: str = ""


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    png: bytes
    caption: str = ""


@dataclass
class Page:
    """An HTML report page. ``add_*`` append blocks; :meth:`render` returns the HTML."""

    title: str
    subtitle: str = ""
    blocks: list[Heading | Paragraph | Table | Figure] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> Page:
        self.blocks.append(Heading(text, level))
        return self

    def text(self, text: str, css: str = "") -> Page:
        self.blocks.append(Paragraph(text, css))
        return self

    def table(self, columns: list[str] | tuple[str, ...], rows: list[Any], caption: str = ""
              ) -> Page:
        self.blocks.append(Table(tuple(columns), tuple(tuple(r) for r in rows), caption))
        return self

    def figure(self, fig: Any, caption: str = "", dpi: int = 110) -> Page:
        """Embed a matplotlib figure (it is closed afterwards)."""
        return self.image(figure_png(fig, dpi), caption)

    def image(self, png: bytes, caption: str = "") -> Page:
        """Embed a PNG image given as bytes (e.g. a figure stored as an artifact)."""
        self.blocks.append(Figure(png, caption))
        return self

    def render(self) -> str:
        body = "\n".join(_render_block(b) for b in self.blocks)
        tpl = Template(resources.files("trainlab.report").joinpath("templates/page.html")
                       .read_text(encoding="utf-8"))
        css = resources.files("trainlab.report").joinpath("templates/style.css").read_text(
            encoding="utf-8")
        return tpl.substitute(title=html.escape(self.title), subtitle=html.escape(self.subtitle),
                              css=css, body=body)

    def fragment(self) -> str:
        """The page as an HTML fragment for a notebook cell: the same blocks and figures as
        :meth:`render`, inside one ``div`` whose style rules apply to it alone."""
        body = "\n".join(_render_block(b) for b in self.blocks)
        css = resources.files("trainlab.report").joinpath("templates/style.css").read_text(
            encoding="utf-8")
        sub = f'<p class="subtitle">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        return (f'<div class="{_SCOPE}"><style>{_scoped(css)}</style>'
                f"<h1>{html.escape(self.title)}</h1>{sub}\n{body}</div>")

    def _repr_html_(self) -> str:
        """Inline display in Jupyter and other notebooks."""
        return self.fragment()

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the page atomically (temp file + rename) and return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.render(), encoding="utf-8")
        os.replace(tmp, path)
        return path


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


_SCOPE = "trainlab-report"


def _scoped(css: str) -> str:
    """``css`` with every selector limited to the fragment's ``div`` (``body`` becomes the
    ``div`` itself), so a notebook's own styles are left alone."""
    out = []
    for rule in css.split("}"):
        selectors, brace, decls = rule.partition("{")
        if not brace:
            continue
        scoped = [f".{_SCOPE}" if s.strip() == "body" else f".{_SCOPE} {s.strip()}"
                  for s in selectors.split(",")]
        out.append(f"{', '.join(scoped)} {{{decls}}}")
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _render_block(b: Heading | Paragraph | Table | Figure) -> str:
    if isinstance(b, Heading):
        return f"<h{b.level}>{html.escape(b.text)}</h{b.level}>"
    if isinstance(b, Paragraph):
        cls = f' class="{html.escape(b.css)}"' if b.css else ""
        return f"<p{cls}>{html.escape(b.text)}</p>"
    if isinstance(b, Table):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in b.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>"
            for r in b.rows
        )
        cap = f"<caption>{html.escape(b.caption)}</caption>" if b.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    data = base64.b64encode(b.png).decode("ascii")
    cap = f"<figcaption>{html.escape(b.caption)}</figcaption>" if b.caption else ""
    alt = html.escape(b.caption)
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">{cap}</figure>'
