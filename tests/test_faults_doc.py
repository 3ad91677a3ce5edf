"""docs/faults.md and the fault-matrix tests describe the same matrix.

Every row of the page names the test that proves it; a row whose test was renamed or
deleted, or a matrix test the page does not mention, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "faults.md"
MATRIX_FILES = sorted(
    [*ROOT.glob("tests/test_faults_*.py"), *ROOT.glob("tests/integration/test_faults_*.py")]
)


def documented_tests() -> set[str]:
    names = set()
    for line in DOC.read_text().splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        for name in re.findall(r"`(test_\w+)(?:\[[^\]]*\])?`", cells[-1]):
            names.add(name)
    return names


def matrix_tests() -> set[str]:
    names = set()
    for path in MATRIX_FILES:
        if path.name == Path(__file__).name:
            continue
        names.update(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M))
    return names


def test_every_row_names_a_test_that_exists() -> None:
    missing = documented_tests() - matrix_tests()
    assert not missing, f"docs/faults.md names tests that do not exist: {sorted(missing)}"


def test_every_matrix_test_has_its_row() -> None:
    undocumented = matrix_tests() - documented_tests()
    assert not undocumented, f"fault tests without a row in docs/faults.md: {sorted(undocumented)}"


def test_the_readme_links_the_page() -> None:
    assert "(docs/faults.md)" in (ROOT / "README.md").read_text()


def test_no_section_is_left_unwritten() -> None:
    assert "<!--" not in DOC.read_text(), "a provider section of docs/faults.md is empty"
