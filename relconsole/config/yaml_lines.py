"""YAML to plain data, with the line every key path was written on.

PyYAML's loaders forget where a value came from, so the file is composed into nodes
and built here, recording `{key path: line}` on the way. That is what lets every
problem name its line. Duplicate keys, which PyYAML silently resolves to the last
one, are rejected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from relconsole.config.errors import ConfigError, KeyPath, format_key
from relconsole.suggest import describe

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class Composer:
    """Builds plain Python data from a YAML node tree, recording the line of every key path.

    With a `duplicates` list, a duplicate key is recorded there instead of stopping the
    build, so `relconsole check` can report it with everything else.
    """

    def __init__(
        self, path: Path, loader: yaml.SafeLoader, duplicates: list[ConfigError] | None = None
    ) -> None:
        self.path = path
        self.loader = loader
        self.lines: dict[KeyPath, int] = {}
        self.raw: dict[KeyPath, str] = {}  # plain scalars' source text, to keep "2.10" as typed
        self.duplicates = duplicates
        self._stack: set[int] = set()
        self._reported: set[int] = set()

    def fail(self, node: yaml.Node, key: KeyPath, problem: str, hint: str = "") -> ConfigError:
        return ConfigError(self.path, node.start_mark.line + 1, format_key(key), problem, hint)

    def build(self, node: yaml.Node, key: KeyPath) -> Any:
        if id(node) in self._stack:
            raise self.fail(node, key, "an alias refers to itself", "Remove the recursive alias")
        self._stack.add(id(node))
        try:
            if isinstance(node, yaml.ScalarNode):
                return self._scalar(node, key)
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, key)
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, key)
        finally:
            self._stack.discard(id(node))
        raise self.fail(node, key, "unsupported YAML node")  # pragma: no cover

    def _scalar(self, node: yaml.ScalarNode, key: KeyPath) -> Any:
        # Errors are raised outside the `except` so that no YAML error (whose snippet
        # quotes the file, secrets and all) rides along as __context__.
        problem = None
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            problem = exc.problem or "cannot read this value"
            if "constructor for the tag" in problem:
                problem = f"unsupported YAML tag '{node.tag}'"
        if problem is not None:
            raise self.fail(node, key, problem, "Remove the tag or quote the value")
        if node.style is None:
            self.raw[key] = node.value
        return value

    def _sequence(self, node: yaml.SequenceNode, key: KeyPath) -> list[Any]:
        if node.tag != _SEQ_TAG:
            raise self.fail(node, key, f"unsupported YAML tag '{node.tag}'", "Remove the tag")
        items = []
        for index, child in enumerate(node.value):
            self.lines.setdefault((*key, index), child.start_mark.line + 1)
            items.append(self.build(child, (*key, index)))
        return items

    def _pairs(self, node: yaml.MappingNode, key: KeyPath) -> list[tuple[yaml.Node, yaml.Node]]:
        """Explicit pairs (duplicates rejected), then pairs merged in with `<<:`."""
        explicit: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        seen: dict[str, int] = {}  # name -> line of its first use
        position: dict[str, int] = {}  # name -> index in `explicit`
        for knode, vnode in node.value:
            if knode.tag == _MERGE_TAG:
                merged.extend(self._merged(vnode, key))
                continue
            if not isinstance(knode, yaml.ScalarNode):
                raise self.fail(
                    knode,
                    key,
                    "a key must be a plain name, not a list or mapping",
                    "Write keys as plain names, e.g. service:",
                )
            name = knode.value
            if name in seen:
                duplicate = self.fail(
                    knode,
                    (*key, name),
                    f"duplicate key '{name}' (first at line {seen[name]})",
                    "Keep only one; YAML would silently use the last one",
                )
                if self.duplicates is None:
                    raise duplicate
                # A mapping merged in with `<<:` is walked again; report its key once.
                if id(knode) not in self._reported:
                    self._reported.add(id(knode))
                    self.duplicates.append(duplicate)
                # Read on as YAML does (the last one wins), so the rest of the file is
                # judged on the value it really holds, not on a `key:` left empty above.
                explicit[position[name]] = (knode, vnode)
                continue
            seen[name] = knode.start_mark.line + 1
            position[name] = len(explicit)
            explicit.append((knode, vnode))
        names = set(seen)
        for knode, vnode in merged:
            if knode.value not in names:
                names.add(knode.value)
                explicit.append((knode, vnode))
        return explicit

    def _merged(self, vnode: yaml.Node, key: KeyPath) -> list[tuple[yaml.Node, yaml.Node]]:
        """The pairs `<<: *anchor` (or `<<: [*a, *b]`) brings in."""
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise self.fail(
                    vnode,
                    key,
                    "'<<' must merge a mapping",
                    "Point '<<:' at an anchored mapping, e.g. <<: *defaults",
                )
            pairs.extend(self._pairs(source, key))
        return pairs

    def _mapping(self, node: yaml.MappingNode, key: KeyPath) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            raise self.fail(node, key, f"unsupported YAML tag '{node.tag}'", "Remove the tag")
        out: dict[str, Any] = {}
        for knode, vnode in self._pairs(node, key):
            child = (*key, knode.value)
            self.lines.setdefault(child, knode.start_mark.line + 1)
            out[knode.value] = self.build(vnode, child)
        return out


def yaml_error(path: Path, text: str, exc: yaml.YAMLError) -> ConfigError:
    """A parse error in words, with its line; never PyYAML's snippet of the file."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        return ConfigError(
            path,
            line,
            "",
            "the file contains a character YAML does not allow",
            "Remove control characters from the file",
        )
    problem = getattr(exc, "problem", None) or "cannot be parsed"
    context = getattr(exc, "context", None)
    hint = "Check the indentation and quoting on this line and the one before it"
    if "'\\t'" in problem:
        problem, hint = "a tab character is used for indentation", "Indent with spaces, not tabs"
    elif "mapping values are not allowed" in problem:
        hint = "Check the indentation, and quote values that contain ': '"
    elif "expected a single document" in (context or "") or "single document" in problem:
        problem, hint = "the file holds more than one YAML document", "Remove the '---' separator"
    elif "found undefined alias" in (context or ""):
        hint = "Define the anchor (&name) before using it (*name)"
    if context and "single document" not in context:
        problem = f"{context}, {problem}"
    return ConfigError(path, line, "", f"invalid YAML: {problem}", hint)


def compose(
    path: Path, text: str, duplicates: list[ConfigError] | None = None
) -> tuple[dict[str, Any], Composer]:
    """The file's top-level mapping and the composer that knows its lines.

    Raises ConfigError for a file that is not YAML, is empty or is not a mapping.
    """
    error = None
    loader: yaml.SafeLoader | None = None
    try:
        # The reader checks for forbidden characters while it is being constructed.
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is not None:
            composer = Composer(path, loader, duplicates)
            data = composer.build(node, ())
    except yaml.YAMLError as exc:
        error = yaml_error(path, text, exc)
    finally:
        if loader is not None:
            loader.dispose()
    if error is not None:  # raised here so the YAML error (which quotes the file) is not kept
        raise error
    if node is None:
        raise ConfigError(path, None, "", "the file is empty", "Start from config.example.yaml")
    if not isinstance(data, dict):
        raise ConfigError(
            path,
            node.start_mark.line + 1,
            "",
            f"the top level must be a mapping of sections (release:, providers:, ...), "
            f"not {describe(data)}",
            "Start from config.example.yaml",
        )
    return data, composer
