"""Bad input found by machine: whatever the file holds, the loader either loads it or
explains it in one ConfigError — never another exception, never a traceback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from relconsole.config import ConfigError, ConfigProblems, LoadedConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = yaml.safe_load((ROOT / "config.example.yaml").read_text())
# Found cases are kept in the repository, so a failure once found is replayed forever.
DB = DirectoryBasedExampleDatabase(str(ROOT / "tests" / "hypothesis-db"))
FUZZ = settings(
    max_examples=300, deadline=None, database=DB,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def load_text(tmp_path: Path, text: str | bytes) -> LoadedConfig | ConfigError:
    path = tmp_path / "fuzz.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        return load_config(path, resolve_secrets=False)
    except ConfigError as exc:
        message = str(exc)
        assert "fuzz.yaml" in message
        assert "\n" not in message and "Traceback" not in message
        return exc


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes(tmp_path, data):
    load_text(tmp_path, data)


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text(tmp_path, text):
    load_text(tmp_path, text)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["30s", "2m", "1h30m", "-5s", "0", "env:NOPE", "keyring:a/b", "100"]),
)
yaml_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=20,
)


@FUZZ
@given(yaml_values)
def test_arbitrary_yaml_documents(tmp_path, value):
    load_text(tmp_path, yaml.safe_dump(value, allow_unicode=True))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            out += _paths(child, (*prefix, i))
    return out


PATHS = _paths(EXAMPLE)


def _set(doc: Any, path: tuple, value: Any, delete: bool) -> None:
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), yaml_values, st.booleans()), max_size=4))
def test_plausible_configs_with_a_few_things_wrong(tmp_path, edits):
    """The example with keys removed or replaced by values of the wrong shape."""
    doc = copy.deepcopy(EXAMPLE)
    for path, value, delete in edits:
        try:
            _set(doc, path, value, delete)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced the parent
    load_text(tmp_path, yaml.safe_dump(doc, allow_unicode=True))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), yaml_values, st.booleans()), max_size=4))
def test_collecting_every_problem_agrees_with_stopping_at_the_first(tmp_path, edits):
    """collect=True finds what the plain load finds, and more, each problem on one line."""
    doc = copy.deepcopy(EXAMPLE)
    for path, value, delete in edits:
        try:
            _set(doc, path, value, delete)
        except (KeyError, IndexError, TypeError):
            continue
    first = load_text(tmp_path, yaml.safe_dump(doc, allow_unicode=True))
    try:
        every = load_config(tmp_path / "fuzz.yaml", resolve_secrets=False, collect=True)
    except ConfigProblems as exc:
        every = exc
    if isinstance(first, LoadedConfig):
        assert isinstance(every, LoadedConfig) and every.plan == first.plan
        return
    assert isinstance(every, ConfigProblems)
    messages = [str(p) for p in every.problems]
    assert str(first) in messages
    assert all("fuzz.yaml" in m and "\n" not in m for m in messages)
    lines = [p.line for p in every.problems if p.line is not None]
    assert lines == sorted(lines)


def test_the_unmodified_example_loads(tmp_path):
    assert isinstance(load_text(tmp_path, yaml.safe_dump(EXAMPLE)), LoadedConfig)
