"""The registries as Markdown reference pages: every entry with its summary, paper rows,
defaults, flags and deviations from the paper, generated from the registries themselves
(one source: what ``trainlab list`` shows is what the docs show).

``make docs`` builds the API reference with MkDocs and mkdocstrings; the MkDocs hook
``docs/hooks.py`` adds the pages of :func:`pages` to the site, so nothing generated is kept
in the repository.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

from trainlab.registry import Entry, Registry, all_registries

_DEVIATIONS = re.compile(r"(?i)(?<!standard )\bdeviations?\b[^:\n.]{0,60}:")


def deviations(obj: Any) -> str:
    """The text of the "Deviations" paragraph or section of ``obj``'s docstring, else of
    its module's docstring ("" when neither states any).

    A line ending ``Deviations from the paper:`` opens a section (its indented lines
    follow); ``Deviation: ...`` / ``Deviations: ...`` within a paragraph runs to the next
    blank line."""
    import sys

    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    for doc in (inspect.getdoc(obj), inspect.getdoc(module) if module else None):
        if not doc:
            continue
        match = _DEVIATIONS.search(doc)
        if match is None:
            continue
        start = doc.rfind("\n", 0, match.start()) + 1
        indent = len(doc[start:match.start()]) - len(doc[start:match.start()].lstrip())
        rest = doc[match.end():]
        lines = rest.splitlines()
        head, body = (lines[0].strip(), lines[1:]) if lines else ("", [])
        out = [head] if head else []
        for line in body:
            if not line.strip():
                if head:  # a paragraph ends at the first blank line
                    break
                out.append("")
                continue
            if not head and len(line) - len(line.lstrip()) <= indent:
                break  # the section ends where its indentation does
            out.append(line.strip())
        return " ".join(" ".join(out).split())
    return ""


def defaults(obj: Any) -> list[tuple[str, str]]:
    """``(parameter, default)`` of the keyword parameters of ``obj`` (a function, or a
    class's constructor); ``"required"`` where there is none; ``*args``/``**kwargs`` and
    ``self`` left out."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    out = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self":
            continue
        value = "required" if p.default is p.empty else f"`{_short(repr(p.default))}`"
        out.append((p.name, value))
    return out


def _short(text: str, limit: int = 60) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _where(obj: Any) -> str:
    module = getattr(obj, "__module__", "") or ""
    name = getattr(obj, "__qualname__", "") or getattr(obj, "__name__", "")
    return f"{module}.{name}" if module and name else type(obj).__name__


def entry_markdown(entry: Entry[Any]) -> str:
    """One entry: heading, summary, implementation, paper rows, flags, defaults and
    deviations."""
    from trainlab.papers import paper

    lines = [f"## `{entry.name}`", "", entry.summary, "",
             f"Implementation: `{_where(entry.obj)}`", ""]
    if entry.papers:
        lines += ["Papers:", ""]
        for row in entry.papers:
            try:
                title = paper(row).title
            except KeyError:
                title = "(not in papers.md)"
            lines.append(f"- papers.md row {row}: {title}")
        lines.append("")
    flags = {k: v for k, v in dataclasses.asdict(entry.info).items() if v not in ((), "")}
    if flags:
        lines += ["Flags: " + ", ".join(f"`{k}={_short(repr(v), 80)}`"
                                        for k, v in flags.items()), ""]
    table = defaults(entry.obj)
    if table:
        lines += ["| parameter | default |", "|---|---|"]
        lines += [f"| `{name}` | {value} |" for name, value in table]
        lines.append("")
    dev = deviations(entry.obj)
    if entry.papers or dev:
        lines += [f"Deviations from the paper: {_escape(dev) if dev else 'none stated.'}", ""]
    return "\n".join(lines)


def _escape(text: str) -> str:
    """Docstring text as Markdown text (its reStructuredText roles kept as code)."""
    return re.sub(r":(\w+):`~?([^`]+)`", r"`\2`", text).replace("*", r"\*")


def registry_markdown(registry: Registry[Any]) -> str:
    """The reference page of one registry."""
    entries = registry.entries()
    head = [f"# {registry.kind} registry", "",
            f"{len(entries)} entries, generated from `trainlab.registry` "
            f"(`trainlab list`). Every default below is the implementation's own.", ""]
    return "\n".join(head + [entry_markdown(e) for e in entries])


def pages() -> dict[str, str]:
    """``{relative path: Markdown}``: a page per registry under ``registries/``, an index,
    and an API page per pillar package under ``api/`` (mkdocstrings directives)."""
    regs = all_registries()
    out = {f"registries/{kind}.md": registry_markdown(reg) for kind, reg in regs.items()}
    index = ["# Registries", "", "| registry | entries |", "|---|---|"]
    index += [f"| [{kind}]({kind}.md) | {len(reg)} |" for kind, reg in regs.items()]
    out["registries/index.md"] = "\n".join(index) + "\n"
    for package in api_packages():
        out[f"api/{package}.md"] = (f"# `{package}`\n\n::: {package}\n"
                                    f"    options:\n      show_submodules: true\n")
    return out


def api_packages() -> list[str]:
    """The packages and modules directly under ``trainlab`` (private ones left out)."""
    import pkgutil

    import trainlab

    return [f"trainlab.{m.name}" for m in pkgutil.iter_modules(trainlab.__path__)
            if not m.name.startswith("_")]
