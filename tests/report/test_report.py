import re

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
