"""keel's pure-Python SeedSequence gives exactly NumPy's words and child seeds."""

from __future__ import annotations

import random

import numpy as np
import pytest

from keel.base.seedseq import POOL_SIZE, child_seed, generate_state

_PICK = random.Random(20240229)
ROOTS = [0, 1, 7, 42, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**63 + 12345, 2**100 + 7]
ROOTS += [_PICK.randrange(2**32) for _ in range(40)]
ROOTS += [_PICK.randrange(2**32, 2**160) for _ in range(40)]
REPLICATES = [0, 1, 2, 9, 255, 2**20 + 1, 2**20 + 2, 2**32 + 5]


def _numpy_child(root: int, replicate: int) -> int:
    words = np.random.SeedSequence(root, spawn_key=(replicate,)).generate_state(1, dtype=np.uint32)
    return int(words[0]) & 0x7FFFFFFF


@pytest.mark.parametrize("root", ROOTS)
def test_child_seed_equals_numpy_for_every_replicate(root: int) -> None:
    for replicate in REPLICATES:
        assert child_seed(root, replicate) == _numpy_child(root, replicate), (root, replicate)


def test_child_seed_is_what_numpy_spawn_starts_from() -> None:
    children = np.random.SeedSequence(42).spawn(4)
    for replicate, child in enumerate(children):
        assert child_seed(42, replicate) == int(child.generate_state(1)[0]) & 0x7FFFFFFF


@pytest.mark.parametrize(
    ("entropy", "spawn_key", "n_words"),
    [
        pytest.param(0, (), 1, id="zero-unspawned"),
        pytest.param(12345, (), 8, id="more-words-than-the-pool"),
        pytest.param(2**200 + 3, (), 3, id="entropy-longer-than-the-pool"),
        pytest.param([1, 2, 3, 4, 5, 6], (), 5, id="entropy-sequence"),
        pytest.param(5, (1, 2, 3), 4, id="nested-spawn-key"),
        pytest.param(5, (2**40,), 2, id="multi-word-spawn-key"),
        pytest.param(2**64, (0,), POOL_SIZE * 3, id="large-root-many-words"),
    ],
)
def test_generate_state_equals_numpy(
    entropy: int | list[int], spawn_key: tuple[int, ...], n_words: int
) -> None:
    expected = np.random.SeedSequence(entropy, spawn_key=spawn_key).generate_state(n_words)
    assert generate_state(entropy, spawn_key=spawn_key, n_words=n_words) == expected.tolist()


def test_many_random_inputs_agree_with_numpy() -> None:
    pick = random.Random(7)
    for _ in range(300):
        root = pick.randrange(2 ** pick.choice([8, 32, 64, 96]))
        key = tuple(pick.randrange(2**33) for _ in range(pick.randrange(3)))
        expected = np.random.SeedSequence(root, spawn_key=key).generate_state(3).tolist()
        assert generate_state(root, spawn_key=key, n_words=3) == expected


def test_child_seeds_are_31_bit_and_differ_between_replicates() -> None:
    seeds = [child_seed(42, r) for r in range(200)]
    assert all(0 <= s < 2**31 for s in seeds)
    assert len(set(seeds)) == len(seeds)


def test_negative_entropy_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        generate_state(-1)
