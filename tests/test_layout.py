"""The package's shape (issue 15): small modules, each named in the README's Layout table."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULES = sorted((REPO / "netinv_core").glob("*.py"))
MAX_LINES = 400


def test_no_module_is_longer_than_400_lines():
    long = {p.name: n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, (f"modules over {MAX_LINES} lines: {long}; split each into cohesive modules "
                      f"(one concept each) and re-export what callers import")


def test_every_module_has_a_row_in_the_readme_layout():
    text = (REPO / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    named = set(re.findall(r"^\| `(\w+)` \|", layout, re.M))
    missing = {p.stem for p in MODULES if p.stem != "__init__"} - named
    assert not missing, f"README Layout has no row for {sorted(missing)}"
