"""Inline display in notebooks: the same figures and tables as the report files."""

import re
from html.parser import HTMLParser

from trainlab.report import Comparison, write_comparison_report, write_run_report
from trainlab.store import RunStore
from trainlab.train import RunConfig, Trainer

IMG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def tiny(**kw) -> RunConfig:
    base = dict(task="teacher-linear", model="mlp", model_params={"width": 8}, steps=6,
                batch_size=16, every=3, lr=1e-2, probes="grad-norm,weight-norm",
                schedule="constant", schedule_params={})
    return RunConfig(**{**base, **kw})


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.open, self.seen = [], []

    def handle_starttag(self, tag, attrs):
        self.seen.append(tag)
        if tag not in ("img", "meta", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open.pop() == tag


def check_fragment(fragment: str) -> None:
    parser = Tags()
    parser.feed(fragment)
    assert parser.open == []  # balanced
    assert parser.seen[0] == "div" and not {"html", "body", "head"} & set(parser.seen)
    # every style rule is limited to the fragment
    css = fragment.split("<style>")[1].split("</style>")[0]
    for rule in filter(str.strip, css.split("}")):
        for selector in rule.split("{")[0].split(","):
            assert selector.strip().startswith(".trainlab-report"), selector


def test_run_result_and_comparison_show_the_report_figures(tmp_path):
    store = RunStore(tmp_path)
    a = Trainer(tiny(), store=store, report=False).run()
    b = Trainer(tiny(lr=2e-2, name="faster"), store=store, report=False).run()

    fragment = a._repr_html_()
    check_fragment(fragment)
    report = write_run_report(store, a.run_id).read_text()
    assert IMG.findall(fragment) == IMG.findall(report) and len(IMG.findall(report)) >= 2
    headings = re.findall(r"<h2>(.*?)</h2>", report)
    assert re.findall(r"<h2>(.*?)</h2>", fragment) == headings and len(headings) >= 4

    comparison = Comparison(store, [a.run_id, "faster"])
    assert comparison.run_ids == [a.run_id, b.run_id]
    fragment = comparison._repr_html_()
    check_fragment(fragment)
    report = write_comparison_report(store, [a.run_id, b.run_id], tmp_path / "c.html")
    assert IMG.findall(fragment) == IMG.findall(report.read_text())
    assert comparison.write(tmp_path / "d.html").read_text() == report.read_text()
