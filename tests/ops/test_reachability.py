"""The generic walk: JSON objects name others by digest; everything else is a leaf."""

from __future__ import annotations

import pytest

from keel.base.canonical import canonical_json
from keel.base.digest import Digest, hash_bytes
from keel.errors import CorruptObject
from keel.ops.reachability import JSON_LIMIT, digests_in, reachable, references
from keel.store.objects.memory import MemoryObjectStore

D1, D2 = hash_bytes(b"1"), hash_bytes(b"2")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(canonical_json({"digest": str(D1)}), (D1,), id="value"),
        pytest.param(canonical_json({str(D1): 1, "x": [str(D2)]}), (D1, D2), id="key-and-list"),
        pytest.param(canonical_json({"note": f"see {D1} and {D1}"}), (D1,), id="inside-text"),
        pytest.param(b' \n [{"a": {"b": ["' + str(D2).encode() + b'"]}}]', (D2,), id="nested"),
        pytest.param(canonical_json({"digest": "blake3:abc"}), (), id="too-short"),
        pytest.param(canonical_json({"digest": "sha256:" + "0" * 64}), (), id="other-algorithm"),
    ],
)
def test_references_are_every_digest_written_in_json(data: bytes, expected: tuple[Digest]) -> None:
    assert set(references(data) or ()) == set(expected)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(str(D1).encode(), id="plain-text"),
        pytest.param(b'{"digest": "' + str(D1).encode() + b'"', id="truncated-json"),
        pytest.param(b"\x89PNG" + str(D1).encode(), id="binary"),
        pytest.param(b'"' + str(D1).encode() + b'"', id="json-string"),
    ],
)
def test_objects_that_are_not_json_records_are_leaves(data: bytes) -> None:
    assert references(data) is None


def test_the_walk_follows_records_and_trees_and_reports_what_is_not_stored() -> None:
    store = MemoryObjectStore()
    leaf = store.put_bytes(b"file bytes " + str(D2).encode())  # a leaf naming a digest
    tree = store.put_bytes(canonical_json({"entries": [{"digest": str(leaf)}]}))
    record = store.put_bytes(canonical_json({"tree": str(tree), "spec": str(D1)}))
    graph = reachable(store, [record])
    assert set(graph.nodes) == {record, tree, leaf}
    assert graph.missing == frozenset({D1})
    assert graph.nodes[leaf].children == () and not graph.nodes[leaf].json
    assert [set(layer) for layer in graph.children_first()] == [{leaf}, {tree}, {record}]
    assert graph.tainted([leaf]) == {leaf, tree, record}
    assert graph.closure(tree) == {tree, leaf}


def test_shared_objects_are_visited_once_and_layered_below_every_parent() -> None:
    store = MemoryObjectStore()
    shared = store.put_bytes(b"shared")
    mid = store.put_bytes(canonical_json({"x": str(shared)}))
    top = store.put_bytes(canonical_json({"a": str(mid), "b": str(shared)}))
    layers = reachable(store, [top, mid]).children_first()
    assert layers == [[shared], [mid], [top]]


def test_a_long_chain_of_records_does_not_recurse() -> None:
    store = MemoryObjectStore()
    previous: Digest | None = None
    for i in range(5000):
        previous = store.put_bytes(canonical_json({"i": i, "previous": str(previous)}))
    assert previous is not None
    graph = reachable(store, [previous])
    assert len(graph.nodes) == 5000 and len(graph.children_first()) == 5000


def test_a_corrupt_record_raises_unless_tolerant() -> None:
    store = MemoryObjectStore()
    child = store.put_bytes(b"child")
    record = store.put_bytes(canonical_json({"c": str(child)}))
    store._objects[record] = store._objects[record].replace(b"c", b"d")
    with pytest.raises(CorruptObject):
        reachable(store, [record])
    graph = reachable(store, [record], tolerant=True)
    assert graph.failed == frozenset({record}) and graph.nodes == {}


def test_large_objects_are_never_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryObjectStore()
    big = store.put_bytes(canonical_json({"d": str(D1)}))
    monkeypatch.setattr("keel.ops.reachability.JSON_LIMIT", 4)
    assert reachable(store, [big]).nodes[big].children == ()
    assert JSON_LIMIT == 16 << 20


def test_digests_in_text_finds_each_once_in_order() -> None:
    text = f'a = "{D2}"\nb = "{D1}"\nc = "{D2}"\n'
    assert digests_in(text) == (D2, D1)
