"""MkDocs hook: adds the reference pages generated from trainlab's registries and packages
(:func:`trainlab.reference.pages`) to the site; nothing generated is written to ``docs/``.

:class:`RstMarkup` is the griffe extension (``mkdocs.yml``) that gives the API pages the
same reST-to-Markdown conversion as the registry pages
(:func:`trainlab.reference.rst_to_markdown`)."""

from __future__ import annotations

from typing import Any

import griffe
from mkdocs.structure.files import File, Files

from trainlab.reference import pages, rst_to_markdown


def on_files(files: Files, config) -> Files:
    for path, text in pages().items():
        files.append(File.generated(config, f"reference/{path}", content=text))
    return files


class RstMarkup(griffe.Extension):
    """Every docstring's reST roles, literals and ``.. math::`` blocks as Markdown, before
    mkdocstrings parses and renders it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            module = obj.module.path if not obj.is_module else obj.path
            obj.docstring.value = rst_to_markdown(obj.docstring.value, module)
