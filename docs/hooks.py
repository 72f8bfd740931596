"""MkDocs hook: adds the reference pages generated from trainlab's registries and packages
(:func:`trainlab.reference.pages`) to the site; nothing generated is written to ``docs/``."""

from __future__ import annotations

from mkdocs.structure.files import File, Files

from trainlab.reference import pages


def on_files(files: Files, config) -> Files:
    for path, text in pages().items():
        files.append(File.generated(config, f"reference/{path}", content=text))
    return files
