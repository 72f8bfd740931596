"""Self-contained HTML reports: per run, comparisons of runs, and any page built of blocks."""

from trainlab.report.notebook import Comparison, run_html
from trainlab.report.page import Page
from trainlab.report.run_report import (
    RunView,
    build_comparison_page,
    build_run_page,
    write_comparison_report,
    write_run_report,
)

__all__ = ["Comparison", "Page", "RunView", "build_comparison_page", "build_run_page",
           "run_html", "write_comparison_report", "write_run_report"]
