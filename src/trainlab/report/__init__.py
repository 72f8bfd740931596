"""Self-contained HTML reports: per run, comparisons of runs, and any page built of blocks."""

from trainlab.report.page import Page
from trainlab.report.run_report import (
    RunView,
    build_comparison_page,
    build_run_page,
    write_comparison_report,
    write_run_report,
)

__all__ = ["Page", "RunView", "build_comparison_page", "build_run_page",
           "write_comparison_report", "write_run_report"]
