"""NumPy's ``SeedSequence`` in pure Python: derive independent child seeds from one root seed.

keel does not depend on NumPy, but the seeds it derives must be the ones a NumPy user would get,
so that ``SeedSequence(root).spawn(n)[r]`` in a notebook names the same stream as keel's
replicate ``r``. This is a port of the hashing in ``numpy/random/bit_generator.pyx``
(``hashmix``, ``mix``, ``SeedSequence.mix_entropy``, ``get_assembled_entropy`` and
``generate_state``), on 32-bit words; a test compares it with NumPy for many inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

POOL_SIZE = 4
"""Words of internal state, NumPy's ``DEFAULT_POOL_SIZE``."""

_MASK32 = 0xFFFFFFFF
_INIT_A = 0x43B0D7E5
_MULT_A = 0x931E8875
_INIT_B = 0x8B51F9DD
_MULT_B = 0x58F38DED
_MIX_MULT_L = 0xCA01F9DD
_MIX_MULT_R = 0x4973F715
_XSHIFT = 16  # half the bits of a 32-bit word


class _HashMix:
    """NumPy's ``hashmix`` with its running multiplier (``hash_const``)."""

    __slots__ = ("const",)

    def __init__(self) -> None:
        self.const = _INIT_A

    def __call__(self, value: int) -> int:
        value ^= self.const
        self.const = (self.const * _MULT_A) & _MASK32
        value = (value * self.const) & _MASK32
        return value ^ (value >> _XSHIFT)


def _mix(x: int, y: int) -> int:
    result = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _MASK32
    return result ^ (result >> _XSHIFT)


def _words(value: int) -> list[int]:
    """A non-negative integer as little-endian 32-bit words (0 is one word)."""
    if value < 0:
        raise ValueError(f"seed entropy must be non-negative, got {value}")
    words = [value & _MASK32]
    value >>= 32
    while value:
        words.append(value & _MASK32)
        value >>= 32
    return words


def _coerce(values: int | Iterable[int]) -> list[int]:
    if isinstance(values, int):
        return _words(values)
    return [word for value in values for word in _words(value)]


def _assembled(entropy: int | Sequence[int], spawn_key: Sequence[int]) -> list[int]:
    run = _coerce(entropy)
    spawn = _coerce(spawn_key)
    if spawn and len(run) < POOL_SIZE:
        # NumPy >= 1.19 pads the root entropy when there is a spawn key (numpy gh-16539).
        run += [0] * (POOL_SIZE - len(run))
    return run + spawn


def _pool(entropy: list[int]) -> list[int]:
    """NumPy's ``mix_entropy``: fold every entropy word into ``POOL_SIZE`` words."""
    hashmix = _HashMix()
    pool = [hashmix(entropy[i] if i < len(entropy) else 0) for i in range(POOL_SIZE)]
    for src in range(POOL_SIZE):
        for dst in range(POOL_SIZE):
            if src != dst:
                pool[dst] = _mix(pool[dst], hashmix(pool[src]))
    for word in entropy[POOL_SIZE:]:
        for dst in range(POOL_SIZE):
            pool[dst] = _mix(pool[dst], hashmix(word))
    return pool


def generate_state(
    entropy: int | Sequence[int], *, spawn_key: Sequence[int] = (), n_words: int = 1
) -> list[int]:
    """``SeedSequence(entropy, spawn_key=spawn_key).generate_state(n_words)`` (uint32 words).

    Args:
        entropy: the root seed (any size) or a sequence of them; all non-negative.
        spawn_key: the child's path from the root: ``(r,)`` is the root's ``spawn(...)[r]``.
        n_words: how many 32-bit words to return.

    Raises:
        ValueError: for a negative entropy or spawn key value.
    """
    pool = _pool(_assembled(entropy, spawn_key))
    const = _INIT_B
    state: list[int] = []
    for index in range(n_words):
        value = pool[index % POOL_SIZE] ^ const
        const = (const * _MULT_B) & _MASK32
        value = (value * const) & _MASK32
        state.append(value ^ (value >> _XSHIFT))
    return state


def child_seed(root: int, replicate: int) -> int:
    """The seed of replicate ``replicate`` of root seed ``root``: a non-negative 31-bit int.

    The first word of ``SeedSequence(entropy=root, spawn_key=(replicate,)).generate_state(1)``
    masked to 31 bits, so it is a valid seed for every library (some refuse seeds >= 2**31).
    It is what NumPy's ``SeedSequence(root).spawn(n)[replicate]`` starts from.
    """
    return generate_state(root, spawn_key=(replicate,))[0] & 0x7FFFFFFF
