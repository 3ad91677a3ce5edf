"""Hypothesis settings shared by the property tests, bounded so CI stays inside its time."""

from __future__ import annotations

from pathlib import Path

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

DB = DirectoryBasedExampleDatabase(str(Path(__file__).parent / "hypothesis-db"))

# For properties of pure functions: cheap examples, so many of them.
FUZZ_SMALL = settings(max_examples=500, deadline=None, database=DB)
