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
import sys
from typing import Any

from trainlab.registry import Entry, Registry, all_registries

#: what a page says where a docstring has no Deviations paragraph: not "none", which only a
#: docstring may say (after checking the implementation against the paper)
NOT_STATED = "not stated in the docstring (no record of a check against the paper)."
_DEVIATIONS = re.compile(r"(?i)(?<!standard )\bdeviations?\b[^:\n.]{0,60}:")


def deviations(obj: Any) -> str:
    """The text of the "Deviations" paragraph or section of ``obj``'s docstring, else of
    its module's docstring (of the wrapped function's module for a wrapper such as
    :func:`trainlab.init._apply.tensor_scheme`'s; "" when neither states any).

    A line ending ``Deviations from the paper:`` opens a section: its more indented lines
    follow (or, when the next line is not indented further, the paragraph up to the next
    blank line); ``Deviation: ...`` / ``Deviations: ...`` within a paragraph runs to the
    next blank line. A heading with no text after it is skipped for the next one."""
    module = sys.modules.get(getattr(inspect.unwrap(obj), "__module__", "") or "")
    for doc in (inspect.getdoc(obj), inspect.getdoc(module) if module else None):
        for match in _DEVIATIONS.finditer(doc or ""):
            text = _deviation_text(doc, match)
            if text:
                return text
    return ""


def _deviation_text(doc: str, match: re.Match[str]) -> str:
    """The text that follows one "Deviations ...:" heading (see :func:`deviations`)."""
    start = doc.rfind("\n", 0, match.start()) + 1
    indent = len(doc[start:match.start()]) - len(doc[start:match.start()].lstrip())
    lines = doc[match.end():].splitlines()
    head, body = (lines[0].strip(), lines[1:]) if lines else ("", [])
    nested = not head and bool(body) and len(body[0]) - len(body[0].lstrip()) > indent
    out = [head] if head else []
    for line in body:
        if not line.strip():
            if not nested:  # a paragraph ends at the first blank line
                break
            out.append("")
            continue
        if nested and len(line) - len(line.lstrip()) <= indent:
            break  # the section ends where its indentation does
        out.append(line.strip())
    return " ".join(" ".join(out).split())


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
        where = getattr(inspect.unwrap(entry.obj), "__module__", "")
        text = rst_to_markdown(dev, where) if dev else NOT_STATED
        lines += [f"Deviations from the paper: {text}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# reStructuredText inline markup as Markdown

#: the blocks that are not inline text: a ``.. math::`` directive with its (optional) first
#: line and the more indented lines below it; a literal block (a line ending ``::``, a blank
#: line, then more indented lines); a doctest (from a ``>>>`` line to the next blank line)
_BLOCKS = re.compile(
    r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<first>[^\n]*)\n?"
    r"(?P<body>(?:(?:[ \t]*\n)*(?P=indent)[ \t]+[^\n]*\n?)*)"
    r"|^(?P<lhead>(?P<lindent>[ \t]*)[^\n]*\S)::[ \t]*\n"
    r"(?P<lbody>(?:[ \t]*\n)+(?:(?P=lindent)[ \t]+[^\n]*\n?|[ \t]*\n)*)"
    r"|^(?P<doctest>[ \t]*>>>[^\n]*(?:\n[^\n]*\S[^\n]*)*\n?)",
    re.MULTILINE)
#: inline markup, first match wins: a ``literal`` (may hold single backticks), a
#: :role:`target`, a `default-role` span (already Markdown code), a bullet's star, starred
#: parameter names opening a line (``**kwargs:`` in Args), reST emphasis/strong, and a
#: lone star (escaped, so Markdown does not pair it up)
_INLINE = re.compile(
    r"(?P<literal>(?<!`)``(?P<lit>(?:[^\n]|\n(?![ \t]*\n))+?)``(?!`))"
    r"|(?P<role>(?<![\w`:]):(?P<name>[A-Za-z][\w.+-]*(?::[A-Za-z][\w.+-]*)?):"
    r"`(?P<body>(?:[^`\n]|\n(?![ \t]*\n))+?)`(?!`))"
    r"|(?P<code>(?<!`)`[^`\n]+`(?!`))"
    r"|(?P<bullet>^[ \t]*\*(?=[ \t]))"
    r"|(?P<params>^[ \t]*(?=[\w, \t]*\*)[\w*, \t]*\w(?=:))"
    r"|(?P<emph>(?<![\w*\\])(?P<stars>\*\*?)(?=[^\s*])(?:[^*\n]|\n(?![ \t]*\n))*?[^\s*\\]"
    r"(?P=stars)(?![\w*]))"
    r"|(?P<star>\*)", re.MULTILINE)
_XREF_ROLES = {"func", "class", "meth", "mod", "attr", "data", "exc", "obj", "const",
               "type", "any", "ref"}


def rst_to_markdown(text: str, module: str = "") -> str:
    r"""reST markup in a docstring as Markdown that MkDocs renders: the one conversion the
    registry pages and the API pages (the docs' griffe extension) both use.

    - ``:func:`x```, ``:class:`~a.B```, ``:meth:``, ``:mod:`` and the other Python roles:
      an optional MkDocs cross-reference (``<autoref ... optional>``) whose text is the
      target as code (its last part after ``~``; the title of ``title <target>``); it
      links where the API pages document the target and is plain code elsewhere. A
      target without a dot, or a relative one, is looked up in ``module``.
    - ``:math:`x``` becomes ``\(x\)`` and a ``.. math::`` directive a ``\[ ... \]``
      block (arithmatex, rendered by MathJax).
    - ````literal```` becomes a Markdown code span (with a longer fence where the
      literal holds backticks); `x` (reST's default role) stays a code span.
    - reST ``*emphasis*``, ``**strong**`` and ``*`` list bullets stay; any other star is
      escaped.
    - literal blocks (after ``text::``, which reads ``text:``) and doctests are left
      verbatim (Markdown shows an indented block as code).

    Everything else is left as it is."""
    out: list[str] = []
    pos = 0
    for m in _BLOCKS.finditer(text):
        out.append(_inline(text[pos:m.start()], module))
        if m["lhead"] is not None:  # "text::" reads "text:", its block stays verbatim
            out.append(_inline(m["lhead"], module) + ":\n" + m["lbody"])
        elif m["doctest"] is not None:
            out.append(m["doctest"])
        else:
            out.append(_math_block(m["indent"], m["first"], m["body"]))
        pos = m.end()
    out.append(_inline(text[pos:], module))
    return "".join(out)


def _math_block(indent: str, first: str, body: str) -> str:
    lines = [first.strip()] if first.strip() else []
    body_lines = body.splitlines()
    deeper = [len(b) - len(b.lstrip()) for b in body_lines if b.strip()]
    cut = min(deeper, default=0)
    lines += [b[cut:].rstrip() for b in body_lines if b.strip()]
    math = "\n".join(f"{indent}    {line}" if line else "" for line in lines)
    return f"\n{indent}\\[\n{math}\n{indent}\\]\n\n"


def _inline(text: str, module: str) -> str:
    return _INLINE.sub(lambda m: _inline_token(m, module), text)


def _inline_token(m: re.Match[str], module: str) -> str:
    if m["literal"]:
        return _code_span(m["lit"])
    if m["code"] or m["emph"] or m["bullet"] or m["params"]:
        return m[0]
    if m["star"]:
        return r"\*"
    name, body = m["name"].split(":")[-1], m["body"]
    if name == "math":
        return rf"\({body}\)"
    if name not in _XREF_ROLES:
        return _code_span(body)
    titled = re.fullmatch(r"(?s)(?P<title>.*?\S)\s*<(?P<target>[^<>]+)>", body)
    if titled:
        title, target = titled["title"], titled["target"]
    else:
        target = body.lstrip("!")
        title = target[1:].rsplit(".", 1)[-1] if target.startswith("~") else target
    relative = target.lstrip("~!").startswith(".")
    if not titled:  # a target broken over lines: a dotted name has no spaces
        target = "".join(target.split())
    target = " ".join(target.lstrip("~.!").split())
    if body.startswith("!") or not re.fullmatch(r"[\w.]+", target):
        return _code_span(title)
    target = _identifier(target, module, relative)
    escaped = " ".join(title.split()).replace("&", "&amp;").replace("<", "&lt;")
    return f'<autoref identifier="{target}" optional><code>{escaped}</code></autoref>'


def _identifier(target: str, module: str, relative: bool) -> str:
    """The documented path of ``target`` as seen from ``module``: where the name can be
    followed to a Python object, the path where that object is defined (the one the API
    pages give it); else ``module.target`` for a name that is not absolute."""
    local = f"{module}.{target}" if module else target
    absolute = not relative and target.split(".")[0] in sys.modules
    for path in ((target, local) if absolute else (local,)):
        obj = _lookup(path)
        if obj is None:
            continue
        if inspect.ismodule(obj):
            return obj.__name__
        where, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if isinstance(where, str) and isinstance(name, str) and "<" not in name:
            return f"{where}.{name}"
        return path
    return target if absolute else local


def _lookup(path: str) -> Any:
    """The object at dotted ``path`` among the modules already imported (None if none)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        obj = sys.modules.get(".".join(parts[:cut]))
        if obj is None:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj
    return None


def _code_span(text: str) -> str:
    """``text`` as one Markdown code span: a fence longer than its longest backtick run."""
    text = " ".join(text.split())
    fence = "`" * (max((len(r) for r in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


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
