import re

import numpy as np

from trainlab.report import Page, write_run_report
from trainlab.store import RunStore


def _fake_run(store: RunStore, status: str = "completed") -> str:
    rid = store.create_run({"lr": 0.1, "model_params": {"width": 4}}, name="fake", seed=0)
    rows = []
    for s in range(0, 101, 10):
        rows += [(s, "loss", 1.0 / (s + 1)), (s, "lr", 0.1), (s, "test/accuracy", s / 100),
                 (s, "sharpness", 5.0 + s / 10), (s, "grad_norm/0.weight", 1.0 + s),
                 (s, "grad_norm/0.bias", 0.5), (s, "rotation/0.weight", s / 200),
                 (s, "distance/0.weight", s / 10), (s, "precond_sharpness", 100.0 + s),
                 (s, "precond_threshold", 380.0)]
    store.log_metrics(rid, rows)
    store.set_status(rid, status, {"final_loss": 0.01, "diverged_at": 100})
    return rid


def test_run_report_is_self_contained_with_all_sections(tmp_path):
    store = RunStore(tmp_path)
    path = write_run_report(store, _fake_run(store))
    html = path.read_text()
    for section in ("Summary", "Loss and accuracy", "Per-layer gradient norms",
                    "Sharpness and the edge of stability", "Optimizer-aware sharpness",
                    "Layer rotation", "Configuration"):
        assert f"<h2>{section}</h2>" in html, section
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 4
    assert not re.search(r'(src|href)="(http|/)', html)  # nothing outside the file
    assert store.artifact(store.resolve("fake"), "report") == path


def test_diverged_run_says_so(tmp_path):
    store = RunStore(tmp_path)
    html = write_run_report(store, _fake_run(store, "diverged")).read_text()
    assert "diverged" in html and "step 100" in html


def test_page_escapes_text(tmp_path):
    html = Page("<t>").text("<script>x</script>").table(["a"], [["<b>"]]).render()
    assert "<script>x" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html


def test_probe_sections_come_from_the_declared_metrics(tmp_path):
    """Each probe with a plot hint gets its section, titled from its registry info, exactly
    when the run holds one of its declared metrics."""
    from trainlab.probes import PROBES

    store = RunStore(tmp_path)
    rid = store.create_run({"lr": 0.1}, name="declared", seed=0)
    rows = []
    for s in range(0, 50, 10):
        rows += [(s, "loss", 1.0), (s, "update_ratio", 1e-3 * (s + 1)),
                 (s, "update_ratio/0.weight", 1e-3), (s, "gns", 10.0 + s),
                 (s, "gns/trace_cov", 2.0), (s, "undeclared_thing", 1.0)]
    store.log_metrics(rid, rows)
    store.set_status(rid, "completed", {})
    html = write_run_report(store, rid).read_text()
    sections = set(re.findall(r"<h2>(.*?)</h2>", html))
    with_plot = {e.info.title or e.name for e in PROBES.entries() if e.info.plot}
    assert sections & with_plot == {PROBES.entry("update-ratio").info.title,
                                    PROBES.entry("grad-noise").info.title}
    assert "undeclared_thing" not in html


def test_comparison_panels_come_from_the_declared_metrics(tmp_path):
    """The comparison draws one panel per metric the probes declare for comparison: declared
    scalars (update ratio, gradient noise scale, not only a fixed list), the evaluation's
    members, the sharpness and its EoS ratio but not its solver diagnostics, nothing
    undeclared; the per-step loss is smoothed, log y where values span decades."""
    from trainlab.report.run_report import RunView, comparison_panels

    store = RunStore(tmp_path)
    ids = []
    for k in (1, 2):
        rid = store.create_run({"lr": 0.1 * k}, name=f"run{k}", seed=0)
        rows = [(s, "loss", k / (s + 1)) for s in range(60)]
        for s in range(0, 60, 10):
            rows += [(s, "test/loss", 1.0 / (s + 1)), (s, "test/accuracy", 0.5 + s / 200),
                     (s, "sharpness", 5.0 + s), (s, "eos_ratio", 0.1 * k),
                     (s, "sharpness_matvecs", 40.0), (s, "update_ratio", 1e-3 * (s + 1)),
                     (s, "update_ratio/0.weight", 1e-3), (s, "undeclared_thing", 1.0)]
        if k == 2:
            rows += [(s, "gns", 10.0 + s) for s in range(0, 60, 10)]
        store.log_metrics(rid, rows)
        store.set_status(rid, "completed", {})
        ids.append(rid)
    panels = comparison_panels([RunView.load(store, r) for r in ids])
    titles = [t for t, _, _ in panels]
    assert titles[:3] == ["loss (smoothed)", "test/accuracy", "test/loss"]
    assert set(titles[3:]) == {"gns", "sharpness", "eos_ratio", "update_ratio"}
    by_title = {t: (series, logy) for t, series, logy in panels}
    assert set(by_title["gns"][0]) == {"run2"} and set(by_title["sharpness"][0]) == {"run1",
                                                                                    "run2"}
    assert by_title["loss (smoothed)"][1] and by_title["update_ratio"][1]
    assert not by_title["test/accuracy"][1] and not by_title["eos_ratio"][1]
    steps, values = by_title["loss (smoothed)"][0]["run1"]
    assert len(steps) == 60 - 25 + 1 and np.isclose(values[0], np.mean(1 / np.arange(1, 26)))


def test_a_compared_metric_must_be_declared():
    import pytest

    from trainlab.errors import TrainlabError
    from trainlab.probes._probe import ProbeInfo

    assert ProbeInfo(metrics=("a", "b/*", "c_*")).compared == ("a",)
    with pytest.raises(TrainlabError, match="compare"):
        ProbeInfo(metrics=("a",), compare=("b",))
