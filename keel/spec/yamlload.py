"""Read YAML as plain data (dict, list, str, int, float, bool, None) with a line for every key.

ruamel.yaml only composes the node tree; the data is built here, so no YAML tag can make the
parser build an object. Plain scalars follow the YAML 1.2 core schema whatever ``%YAML``
directive the file carries (``NO`` and ``on`` stay text). Anchors and aliases are allowed
while the expanded document stays small: its size and depth are computed over the node graph
before anything is expanded, so an alias bomb is refused in milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ruamel.yaml import YAML
from ruamel.yaml.composer import MaxDepthExceededError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from keel.base.canonical import JsonValue
from keel.spec.problems import KeyPath, LineMap, Problems, format_key

MAX_NODES = 1_000_000
"""Largest document accepted, counted in nodes after expanding aliases (a pipeline of 10,000
stages takes about 100,000; an alias bomb expands far beyond this limit)."""

MAX_DEPTH = 100
"""Deepest nesting accepted, counted after expanding aliases."""

_STD = "tag:yaml.org,2002:"
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_SCALAR_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "null": type(None)}


@dataclass(frozen=True, slots=True, kw_only=True)
class YamlDocument:
    """A parsed YAML document: its plain data and the line of every key and list item."""

    data: JsonValue
    lines: LineMap


def load_yaml(text: str, *, file: str | None = None, max_nodes: int = MAX_NODES) -> YamlDocument:
    """Parse one YAML document into plain data.

    Args:
        text: the YAML source.
        file: the name problems are reported against (e.g. ``keel.yaml``).
        max_nodes: the largest accepted size, counted after expanding aliases.

    Raises:
        keel.errors.ValidationError: listing every problem (syntax, duplicate keys, tags, size).
    """
    problems = Problems(file)
    doc = read_yaml(text, problems, max_nodes=max_nodes)
    problems.raise_if_any()
    return doc


def read_yaml(text: str, problems: Problems, *, max_nodes: int = MAX_NODES) -> YamlDocument:
    """Parse like :func:`load_yaml`, recording problems in ``problems`` for the caller to raise.

    Duplicate keys leave the data usable (the first value is kept), so a caller can go on to
    find the problems in the rest of the file; every other problem raises at once.

    Raises:
        keel.errors.ValidationError: with the problems so far, when the data is unusable.
    """
    root = _compose(text, problems)
    problems.raise_if_any()
    if root is None:
        return YamlDocument(data=None, lines=LineMap())
    _check_size(root, problems, max_nodes=max_nodes)
    problems.raise_if_any()
    builder = _Builder(problems)
    data = builder.build(root, ())
    if builder.unusable:
        problems.raise_if_any()
    return YamlDocument(data=data, lines=LineMap(lines=builder.lines))


def _compose(text: str, problems: Problems) -> Node | None:
    yaml = YAML(typ="safe", pure=True)
    yaml.max_depth = MAX_DEPTH
    yaml.composer.warn_double_anchors = False  # a re-defined anchor is legal YAML
    try:
        node: Node | None = yaml.compose(text)
    except MaxDepthExceededError as exc:
        problems.add((), f"nesting is deeper than {MAX_DEPTH} levels", line=_line(exc))
        return None
    except MarkedYAMLError as exc:
        message = str(exc.problem or exc.context or "not valid YAML")
        if message.startswith("but ") and exc.context:
            message = f"{exc.context}, {message}"
        problems.add((), f"YAML syntax error: {message}", line=_line(exc))
        return None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        problems.add((), f"character U+{exc.character:04X} is not allowed in YAML", line=line)
        return None
    except YAMLError as exc:
        problems.add((), f"not readable as YAML: {exc}")
        return None
    return node


def _line(exc: MarkedYAMLError) -> int | None:
    mark = exc.problem_mark or exc.context_mark
    return int(mark.line) + 1 if mark is not None else None


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_size(root: Node, problems: Problems, *, max_nodes: int) -> None:
    """Refuse alias cycles and documents that expand past ``max_nodes`` or ``MAX_DEPTH``.

    Sizes are computed once per distinct node (aliases share nodes), so the cost is linear in
    the file, not in its expansion.
    """
    measured: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = [measured[id(k)] for k in _children(node)]
            size = min(1 + sum(s for s, _ in kids), max_nodes + 1)
            measured[key] = (size, 1 + max((d for _, d in kids), default=0))
            open_nodes.discard(key)
        elif key in open_nodes:
            line = int(node.start_mark.line) + 1
            problems.add((), "an alias refers to a node that contains it", line=line)
            return
        elif key not in measured:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((kid, False) for kid in _children(node))
    size, depth = measured[id(root)]
    if size > max_nodes:
        too_big = f"more than {max_nodes} values"
    elif depth > MAX_DEPTH:
        too_big = f"more than {MAX_DEPTH} levels of nesting"
    else:
        return
    problems.add(
        (),
        f"the document expands to {too_big} through anchors and aliases (&name / *name)",
        hint="write the values out, or use fewer nested aliases",
        line=1,
    )


@dataclass(slots=True)
class _Builder:
    """Builds plain data from a size-checked node tree, recording each key's line."""

    problems: Problems
    lines: dict[str, int] = field(default_factory=dict)
    unusable: bool = False

    def build(self, node: Node, path: KeyPath) -> JsonValue:
        tag = str(node.tag)
        explicit = node.ctag.handle is not None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path, tag=tag, explicit=explicit)
        if tag not in (_STD + "seq", _STD + "map"):
            self._bad_tag(node, path, tag)
            return None
        if isinstance(node, SequenceNode):
            items: list[JsonValue] = []
            for index, item in enumerate(node.value):
                self.lines[format_key((*path, index))] = int(item.start_mark.line) + 1
                items.append(self.build(item, (*path, index)))
            return items
        assert isinstance(node, MappingNode)
        return self._mapping(node, path)

    def _scalar(self, node: ScalarNode, path: KeyPath, *, tag: str, explicit: bool) -> JsonValue:
        text = str(node.value)
        if not explicit:
            return resolve_plain(text) if node.style is None else text
        kind = tag.removeprefix(_STD)
        if kind == "str":
            return text
        if kind in _SCALAR_TYPES:
            value = resolve_plain(text)
            if kind == "float" and type(value) is int:
                value = float(value)
            if type(value) is _SCALAR_TYPES[kind]:
                return value
            self._fatal(path, f"cannot read '{text}' as !!{kind}", node=node)
            return None
        self._bad_tag(node, path, tag)
        return None

    def _bad_tag(self, node: Node, path: KeyPath, tag: str) -> None:
        shown = "!!" + tag.removeprefix(_STD) if tag.startswith(_STD) else tag
        self._fatal(
            path,
            f"tag '{shown}' is not allowed",
            node=node,
            hint="keel.yaml holds plain data only: mappings, lists, text, numbers, booleans, null",
        )

    def _fatal(self, path: KeyPath, message: str, *, node: Node, hint: str | None = None) -> None:
        """Record a problem after which the data cannot be used."""
        self.unusable = True
        self.problems.add(path, message, hint=hint, line=int(node.start_mark.line) + 1)

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[str, JsonValue]:
        result: dict[str, JsonValue] = {}
        first_line: dict[str, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            line = int(key_node.start_mark.line) + 1
            if key == "<<" and key_node.style is None and not key_node.ctag.handle:
                merges.append(value_node)
                continue
            if key in first_line:
                self.problems.add(
                    (*path, key),
                    f"duplicate key (first defined on line {first_line[key]})",
                    hint="keep one of them",
                    line=line,
                )
                continue
            first_line[key] = line
            self.lines[format_key((*path, key))] = line
            result[key] = self.build(value_node, (*path, key))
        for merged in merges:
            self._merge(merged, path, result)
        return result

    def _key(self, key_node: Node, path: KeyPath) -> str | None:
        if not isinstance(key_node, ScalarNode):
            self._fatal(path, "mapping keys must be plain text", node=key_node)
            return None
        tag = str(key_node.tag)
        if key_node.ctag.handle is not None and not tag.startswith(_STD):
            self._bad_tag(key_node, path, tag)
            return None
        return str(key_node.value)

    def _merge(self, merged: Node, path: KeyPath, result: dict[str, JsonValue]) -> None:
        """Apply a ``<<`` merge key: keys already present win, earlier sources win."""
        sources = merged.value if isinstance(merged, SequenceNode) else [merged]
        for source in sources:
            if not isinstance(source, MappingNode):
                message = "a merge key (<<) takes a mapping or a list of mappings"
                self._fatal((*path, "<<"), message, node=source)
                continue
            sub = _Builder(self.problems)
            merged_values = sub._mapping(source, path)
            self.unusable = self.unusable or sub.unusable
            for key, value in merged_values.items():
                if key in result:
                    continue
                result[key] = value
                shown = format_key((*path, key))
                below = (shown + ".", shown + "[")
                self.lines.update(
                    (k, v) for k, v in sub.lines.items() if k == shown or k.startswith(below)
                )


def resolve_plain(text: str) -> JsonValue:
    """The YAML 1.2 core-schema value of an unquoted scalar."""
    if _NULL.match(text):
        return None
    if _BOOL.match(text):
        return text.lower() == "true"
    if _INT.match(text):
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text, 10)
    if _FLOAT.match(text):
        lowered = text.lower()
        if lowered.endswith(".inf"):
            return float("-inf") if lowered.startswith("-") else float("inf")
        return float("nan") if lowered == ".nan" else float(text)
    return text
