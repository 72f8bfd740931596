"""docs/testing.md lists, for every registered optimizer, the kinds of reference its tests
compare against; the table must cover the registry exactly and name test files that exist."""

from __future__ import annotations

from pathlib import Path

from trainlab.optim import OPTIMIZERS

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"a", "b", "c", "d"}


def _rows() -> dict[str, tuple[set[str], str, list[str]]]:
    rows = {}
    for line in (ROOT / "docs" / "testing.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("optimizer", "---"):
            continue
        name, kinds, reference, tests = cells
        assert name not in rows, f"{name} has two rows"
        rows[name] = ({k.strip() for k in kinds.split(",")}, reference,
                      [t.strip("` ") for t in tests.split(",")])
    return rows


def test_every_optimizer_has_one_row_with_known_kinds_and_existing_tests():
    rows = _rows()
    assert set(rows) == set(OPTIMIZERS.names())
    for name, (kinds, reference, tests) in rows.items():
        assert kinds <= KINDS and kinds, (name, kinds)
        assert reference, name
        for t in tests:
            assert (ROOT / "tests" / t).is_file(), (name, t)
