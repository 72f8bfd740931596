"""Self-contained HTML reports: per run, comparisons of runs, and any page built of blocks."""

from trainlab.report.page import Page

__all__ = ["Page"]
