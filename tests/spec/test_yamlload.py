"""keel.yaml reading: YAML 1.2 plain data, line numbers, and refusal of unsafe or huge input."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.errors import ValidationError
from keel.spec.problems import LineMap
from keel.spec.yamlload import MAX_DEPTH, load_yaml


def _data(text: str) -> object:
    return load_yaml(text, file="keel.yaml").data


def _problems(text: str, **kwargs: int) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        load_yaml(text, file="keel.yaml", **kwargs)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("NO", "NO", id="NO-stays-text"),
        pytest.param("yes", "yes", id="yes-stays-text"),
        pytest.param("on", "on", id="on-stays-text"),
        pytest.param("true", True, id="true"),
        pytest.param("FALSE", False, id="FALSE"),
        pytest.param("~", None, id="tilde-null"),
        pytest.param("null", None, id="null"),
        pytest.param("12", 12, id="int"),
        pytest.param("-3", -3, id="negative-int"),
        pytest.param("012", 12, id="leading-zero-is-decimal"),
        pytest.param("0o17", 15, id="octal"),
        pytest.param("0x1f", 31, id="hex"),
        pytest.param("1_000", "1_000", id="underscores-are-text"),
        pytest.param("1.0", 1.0, id="float"),
        pytest.param("1e-3", 0.001, id="exponent-without-dot"),
        pytest.param(".5", 0.5, id="leading-dot"),
        pytest.param("-.inf", -math.inf, id="minus-infinity"),
        pytest.param("2001-01-01", "2001-01-01", id="date-stays-text"),
        pytest.param("'12'", "12", id="quoted-number-is-text"),
        pytest.param("!!str 12", "12", id="explicit-str"),
        pytest.param("!!int '7'", 7, id="explicit-int"),
        pytest.param("!!float 1", 1.0, id="explicit-float"),
    ],
)
def test_plain_scalars_follow_the_yaml_1_2_core_schema(text: str, value: object) -> None:
    assert _data(f"key: {text}\n") == {"key": value}


def test_nan_is_read_as_a_float() -> None:
    data = _data("key: .nan\n")
    assert isinstance(data, dict) and math.isnan(data["key"])


def test_a_yaml_1_1_directive_does_not_turn_yes_into_a_bool() -> None:
    assert _data("%YAML 1.1\n---\nkey: yes\n") == {"key": "yes"}


def test_an_explicit_tag_that_does_not_fit_its_text_is_a_problem() -> None:
    assert _problems("a: 1\nb: !!int abc\n") == ["keel.yaml:2: b: cannot read 'abc' as !!int"]


def test_a_python_object_tag_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"a: 1\nb: !!python/object/apply:os.system ['touch {marker}']\n"
    assert _problems(text) == [
        "keel.yaml:2: b: tag '!!python/object/apply:os.system' is not allowed; "
        "keel.yaml holds plain data only: mappings, lists, text, numbers, booleans, null"
    ]
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        pytest.param("a: !custom x\n", "!custom", id="local-tag"),
        pytest.param("a: !!binary aGk=\n", "!!binary", id="binary"),
        pytest.param("a: !!set {x: null}\n", "!!set", id="set"),
        pytest.param("a: !!python/name:os.system\n", "!!python/name:os.system", id="python-name"),
    ],
)
def test_non_standard_tags_are_refused(text: str, tag: str) -> None:
    (problem,) = _problems(text)
    assert problem.startswith(f"keel.yaml:1: a: tag '{tag}' is not allowed")


def test_a_duplicate_key_names_both_lines() -> None:
    text = "experiments:\n  train:\n    seed: 1\n    why: x\n    seed: 2\n"
    assert _problems(text) == [
        "keel.yaml:5: experiments.train.seed: duplicate key (first defined on line 3); "
        "keep one of them"
    ]


def test_every_duplicate_key_in_the_file_is_reported() -> None:
    problems = _problems("a: 1\nb: {x: 1, x: 2}\na: 3\n")
    assert [p.split(": ")[0:2] for p in problems] == [["keel.yaml:2", "b.x"], ["keel.yaml:3", "a"]]


def test_a_syntax_error_names_its_line() -> None:
    (problem,) = _problems("project: x\nparams:\n  a: [1, 2\n  b: 3\n")
    assert problem.startswith("keel.yaml:4: YAML syntax error: ")


def test_a_second_document_is_refused() -> None:
    (problem,) = _problems("a: 1\n---\nb: 2\n")
    assert "expected a single document in the stream, but found another document" in problem


def test_an_alias_bomb_is_refused_without_being_expanded() -> None:
    # 30 levels of 10 aliases each expand to 10**30 nodes: finishing at all shows no expansion.
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 30)]
    text = "\n".join(lines) + "\n"
    assert len(text.encode()) < 2048
    assert _problems(text) == [
        "keel.yaml:1: the document expands to more than 1000000 values through anchors and "
        "aliases (&name / *name); write the values out, or use fewer nested aliases"
    ]


def test_the_size_limit_counts_values_after_expanding_aliases() -> None:
    text = "base: &b [1, 2, 3, 4]\nx: [*b, *b, *b]\n"
    assert _data(text) == {"base": [1, 2, 3, 4], "x": [[1, 2, 3, 4]] * 3}
    (problem,) = _problems(text, max_nodes=20)
    assert "more than 20 values" in problem


def test_an_alias_that_contains_itself_is_refused() -> None:
    assert _problems("a: &a [1, *a]\n") == [
        "keel.yaml:1: an alias refers to a node that contains it"
    ]


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    depth = MAX_DEPTH + 5
    (problem,) = _problems("x: " + "[" * depth + "]" * depth + "\n")
    assert f"nesting is deeper than {MAX_DEPTH} levels" in problem


def test_nesting_built_from_aliases_is_limited_too() -> None:
    lines = ["a0: &a0 " + "[" * 60 + "]" * 60]
    lines += [f"a{i}: &a{i} " + "[" * 60 + f"*a{i - 1}" + "]" * 60 for i in range(1, 3)]
    (problem,) = _problems("\n".join(lines) + "\n")
    assert f"more than {MAX_DEPTH} levels of nesting" in problem


def test_a_reused_anchor_name_is_allowed_and_the_latest_wins() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = _data("a: &x 1\nb: &x 2\nc: *x\n")
    assert data == {"a": 1, "b": 2, "c": 2}


def test_a_merge_key_merges_and_explicit_keys_win() -> None:
    text = "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n"
    doc = load_yaml(text, file="keel.yaml")
    assert doc.data == {"base": {"x": 1, "y": 2}, "d": {"y": 3, "x": 1}}
    assert doc.lines.line_of(("d", "y")) == 4
    assert doc.lines.line_of(("d", "x")) == 1


def test_a_merge_key_with_a_scalar_is_a_problem() -> None:
    assert _problems("d:\n  <<: 5\n") == [
        "keel.yaml:2: d.<<: a merge key (<<) takes a mapping or a list of mappings"
    ]


def test_a_tagged_key_is_refused() -> None:
    assert _problems("!custom a: 1\n") == [
        "keel.yaml:1: tag '!custom' is not allowed; keel.yaml holds plain data only: mappings, "
        "lists, text, numbers, booleans, null"
    ]


def test_a_mapping_used_as_a_key_is_refused() -> None:
    assert _problems("? [a]\n: 1\n") == ["keel.yaml:1: mapping keys must be plain text"]


def test_a_control_character_is_refused_with_its_line() -> None:
    assert _problems("a: 1\nb: x\x7f\n") == ["keel.yaml:2: character U+007F is not allowed in YAML"]


def test_an_empty_document_has_no_data() -> None:
    doc = load_yaml("# only a comment\n", file="keel.yaml")
    assert doc.data is None and doc.lines == LineMap()


def test_the_line_map_records_every_key_and_list_item() -> None:
    doc = load_yaml("a:\n  b: 1\n  c:\n    - x\n    - y\n", file="keel.yaml")
    assert doc.lines.lines == {"a": 1, "a.b": 2, "a.c": 3, "a.c[0]": 4, "a.c[1]": 5}


def test_a_path_without_a_line_is_located_at_its_nearest_ancestor() -> None:
    lines = LineMap(lines={"experiments": 3, "experiments.train": 4})
    assert lines.line_of(("experiments", "train", "inputs", 0)) == 4
    assert lines.line_of(("params",)) is None


# YAML streams may not carry control characters; JSON escapes most of them, but not DEL.
_printable = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn"))
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_printable)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(_printable, max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_json)
def test_any_json_document_reads_back_as_the_same_data(value: object) -> None:
    assert _data(json.dumps(value, ensure_ascii=False)) == value
