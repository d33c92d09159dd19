"""The ObjectStore port: content-addressed blobs plus small named refs, and its shared rules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from keel.base.digest import Digest
from keel.errors import CorruptObject, ObjectNotFound, UserError

_REF_PART = re.compile(r"^[A-Za-z0-9_@-][A-Za-z0-9._@-]*$")
MAX_REF_LENGTH = 1024


class ObjectStore(Protocol):
    """Content-addressed storage: the source of truth for manifests, outputs and logs.

    Every implementation keeps this contract (``tests/contracts/object_store.py`` checks it):

    - Objects are immutable and named by the blake3 digest of their bytes. Putting content that
      is already stored is a cheap no-op, and safe when several processes put it at once.
    - ``put_file`` and ``copy_to`` stream in chunks: memory use does not grow with object size.
    - Reads are verified. ``get_bytes`` and ``copy_to`` re-hash what they read and raise
      :class:`~keel.errors.CorruptObject` instead of returning bad bytes; ``copy_to`` writes a
      temporary file and renames it, so ``dest`` is untouched when it fails.
    - A digest that is not stored raises :class:`~keel.errors.ObjectNotFound` naming it.
    - Refs are small named pointers to digests (``runs/<id>``, ``active/<id>``,
      ``pending/<id>``). Names are ``/``-separated parts of ``[A-Za-z0-9._@-]`` that do not
      start with a dot; anything else raises :class:`~keel.errors.UserError` naming the name.
      A name cannot be both a ref and a folder of refs (``a`` and ``a/b``).
    - ``set_ref(..., create_only=True)`` is atomic: when several writers race for one name,
      exactly one gets ``True`` and the ref keeps that writer's digest.
    - The store location failing (missing, unreadable, full) raises
      :class:`~keel.errors.StoreUnavailable` naming the location and what to do.
    """

    @property
    def url(self) -> str:
        """Where the store lives, e.g. ``file:///home/me/project/.keel``."""
        ...

    def put_bytes(self, data: bytes) -> Digest:
        """Store ``data``; return its digest."""
        ...

    def put_file(self, path: Path) -> Digest:
        """Store a file's content, hashing while copying (constant memory); return its digest.

        Raises:
            keel.errors.UserError: ``path`` cannot be read.
        """
        ...

    def has(self, digest: Digest) -> bool:
        """True when the object is stored (its bytes are not checked)."""
        ...

    def get_bytes(self, digest: Digest) -> bytes:
        """The object's bytes, verified against the digest.

        Raises:
            keel.errors.ObjectNotFound: the object is not stored.
            keel.errors.CorruptObject: the stored bytes do not match the digest.
        """
        ...

    def copy_to(self, digest: Digest, dest: Path) -> None:
        """Write the object to ``dest`` (streamed, verified, atomic; parents are created).

        Raises:
            keel.errors.ObjectNotFound: the object is not stored.
            keel.errors.CorruptObject: the stored bytes do not match; ``dest`` is untouched.
            keel.errors.UserError: ``dest`` cannot be written.
        """
        ...

    def size(self, digest: Digest) -> int:
        """The object's size in bytes; raises ObjectNotFound when it is not stored."""
        ...

    def iter_digests(self) -> Iterator[Digest]:
        """Every stored object's digest, in no guaranteed order."""
        ...

    def verify(self, digest: Digest) -> bool:
        """Re-hash the whole object: True when intact; raises ObjectNotFound when missing."""
        ...

    def set_ref(self, name: str, digest: Digest, *, create_only: bool = False) -> bool:
        """Point ``name`` at ``digest``; with ``create_only``, return False if it already exists."""
        ...

    def get_ref(self, name: str) -> Digest | None:
        """The digest ``name`` points at, or None when there is no such ref."""
        ...

    def list_refs(self, prefix: str) -> Iterator[tuple[str, Digest]]:
        """Refs whose name starts with ``prefix`` (plain string prefix), sorted by name."""
        ...

    def delete_ref(self, name: str) -> None:
        """Remove a ref; a missing ref is fine."""
        ...


def is_ref_name(name: str) -> bool:
    """True when ``name`` is a valid ref name."""
    return 0 < len(name) <= MAX_REF_LENGTH and all(_REF_PART.match(p) for p in name.split("/"))


def check_ref_name(name: str) -> str:
    """Return ``name`` if it is a valid ref name; raise UserError naming it otherwise."""
    if is_ref_name(name):
        return name
    raise UserError(
        f"invalid ref name {name!r}: use '/'-separated parts of letters, digits and '._@-' "
        f"that do not start with '.' (at most {MAX_REF_LENGTH} characters)"
    )


def ref_folder(prefix: str) -> str:
    """The folder part of a ref prefix (``runs/ab`` -> ``runs``), validated; '' for none."""
    folder = prefix.rpartition("/")[0]
    return check_ref_name(folder) if folder else ""


def check_digest(digest: Digest) -> Digest:
    """Return ``digest`` if it is a well-formed keel digest; raise UserError naming it otherwise."""
    if not isinstance(digest, Digest):
        raise UserError(f"not a keel digest: {digest!r}")
    return Digest.parse(str(digest))


def not_found(digest: Digest, url: str) -> ObjectNotFound:
    """The error for a digest the store does not hold."""
    return ObjectNotFound(
        f"object {digest} is not in the store at {url}; "
        "it may live in a remote store (`keel pull`) or have been garbage-collected"
    )


def corrupt(digest: Digest, where: str) -> CorruptObject:
    """The error for stored bytes that no longer match their digest."""
    return CorruptObject(
        f"object {digest} at {where} is corrupt (its bytes no longer match the digest); "
        "run `keel verify` to find every damaged object"
    )


def ref_clash(name: str, other: str) -> UserError:
    """The error for a ref name that collides with an existing ref or folder of refs."""
    return UserError(
        f"ref name {name!r} clashes with the existing ref {other!r}: "
        "a name cannot be both a ref and a folder of refs"
    )
