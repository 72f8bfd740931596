import pytest

from trainlab.errors import TrainlabError, UnknownNameError
from trainlab.papers import paper, papers
from trainlab.registry import Registry, all_registries, entries_for_paper


def test_unknown_name_lists_close_match_and_all_names():
    reg = Registry("widget-test")
    reg.register("orthogonal", object(), summary="x")
    reg.register("lsuv", object(), summary="y")
    with pytest.raises(UnknownNameError) as err:
        reg.get("orthogonl")
    msg = str(err.value)
    assert "Did you mean 'orthogonal'" in msg and "lsuv" in msg and "orthogonal" in msg


def test_duplicate_registration_raises():
    reg = Registry("widget-test-2")
    reg.register("a", 1, summary="one")
    with pytest.raises(TrainlabError, match="already registered"):
        reg.register("a", 2, summary="two")


def test_decorator_form_returns_object():
    reg = Registry("widget-test-3")

    @reg.register("f", summary="a function")
    def f():
        return 3

    assert reg.get("f") is f and f() == 3


def test_papers_table_has_119_rows():
    rows = papers()
    assert [p.row for p in rows] == list(range(1, 120))
    assert paper(42).title.startswith("All you need is a good init")


@pytest.mark.parametrize("kind", sorted(all_registries()))
def test_every_entry_is_documented_and_cites_valid_rows(kind):
    for entry in all_registries()[kind].entries():
        assert entry.summary and "\n" not in entry.summary
        assert all(1 <= r <= 119 for r in entry.papers), (kind, entry.name, entry.papers)


def test_entries_for_paper_finds_orthogonal():
    assert "orthogonal" in {e.name for e in entries_for_paper(1)}
