"""FsspecObjectStore: the contract on a folder and on S3 (moto's server on loopback), plus
create-only writes, streamed uploads and the translation of every backend error."""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path

import pytest

from keel.base.digest import Digest, hash_bytes
from keel.errors import CorruptObject, MissingExtra, ObjectNotFound, StoreUnavailable, UserError
from keel.store.objects import remote as remote_module
from keel.store.objects.base import ObjectStore
from keel.store.objects.remote import FsspecObjectStore
from tests.conftest import S3Server
from tests.contracts.object_store import Damage, ObjectStoreContract


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:] if data else b"x"


def _folder_damage(root: Path) -> Damage:
    def flip(digest: Digest) -> None:
        path = root / "objects" / "blake3" / digest.hexdigest[:2] / digest.hexdigest[2:]
        data = path.read_bytes()
        path.chmod(0o644)
        path.write_bytes(_flip(data))

    return flip


def _s3_damage(store: FsspecObjectStore) -> Damage:
    def flip(digest: Digest) -> None:
        path = store._path(digest)
        store._fs.pipe_file(path, _flip(store._fs.cat_file(path)))

    return flip


class TestFolderRemote(ObjectStoreContract):
    """The contract on a plain folder, through fsspec's local filesystem."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> FsspecObjectStore:
        (tmp_path / "remote").mkdir()
        return FsspecObjectStore(str(tmp_path / "remote"), name="shared")

    @pytest.fixture
    def damage(self, tmp_path: Path) -> Damage:
        return _folder_damage(tmp_path / "remote")


@pytest.mark.s3
class TestS3Remote(ObjectStoreContract):
    """The contract on S3 (moto's server on 127.0.0.1)."""

    @pytest.fixture
    def store(self, s3_server: S3Server) -> FsspecObjectStore:
        bucket = s3_server.make_bucket()
        return FsspecObjectStore(f"s3://{bucket}/team/keel", name="origin", environ=s3_server.env)

    @pytest.fixture
    def damage(self, store: FsspecObjectStore) -> Damage:
        return _s3_damage(store)


# -- folders --------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> FsspecObjectStore:
    return FsspecObjectStore((tmp_path / "remote").as_uri(), name="shared")


def test_a_folder_url_and_a_plain_path_name_the_same_store(tmp_path: Path) -> None:
    by_url = FsspecObjectStore((tmp_path / "r").as_uri())
    by_path = FsspecObjectStore(str(tmp_path / "r"))
    digest = by_url.put_bytes(b"same place")
    assert by_path.get_bytes(digest) == b"same place"
    assert by_url.url == by_path.url == (tmp_path / "r").as_uri()


def test_folder_objects_are_read_only_and_no_temp_file_is_left(
    folder: FsspecObjectStore, tmp_path: Path
) -> None:
    digest = folder.put_bytes(b"kept")
    folder.put_bytes(b"kept")
    path = tmp_path / "remote" / "objects" / "blake3" / digest.hexdigest[:2] / digest.hexdigest[2:]
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert os.listdir(tmp_path / "remote" / "tmp") == []


def test_a_put_never_replaces_an_existing_damaged_folder_object(
    folder: FsspecObjectStore, tmp_path: Path
) -> None:
    digest = folder.put_bytes(b"original")
    _folder_damage(tmp_path / "remote")(digest)
    assert folder.put_bytes(b"original") == digest
    with pytest.raises(CorruptObject, match="shared"):
        folder.get_bytes(digest)


def test_a_large_file_is_streamed_into_a_folder(
    folder: FsspecObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote_module, "SMALL", 1024)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(300_000))
    digest = folder.put_file(src)
    assert folder.get_bytes(digest) == src.read_bytes()
    assert folder.put_file(src) == digest
    assert os.listdir(tmp_path / "remote" / "tmp") == []


def test_a_missing_folder_that_must_exist_is_store_unavailable(tmp_path: Path) -> None:
    store = FsspecObjectStore(str(tmp_path / "typo"), name="shared", create=False)
    for call in (
        lambda: store.has(hash_bytes(b"x")),
        lambda: store.get_ref("runs/a"),
        lambda: store.ref_names("runs/"),
        lambda: store.object_sizes(),
    ):
        with pytest.raises(StoreUnavailable, match="does not exist") as info:
            call()
        assert "remote 'shared'" in str(info.value) and "typo" in str(info.value)


def test_a_missing_folder_reads_as_empty_by_default_and_the_first_write_creates_it(
    tmp_path: Path,
) -> None:
    store = FsspecObjectStore(str(tmp_path / "new" / "remote"))
    assert store.object_sizes() == {} and store.ref_names("") == []
    store.set_ref("runs/a", store.put_bytes(b"a"), create_only=True)
    assert store.get_ref("runs/a") == hash_bytes(b"a")


def test_a_relative_folder_is_refused() -> None:
    with pytest.raises(UserError, match="absolute path"):
        FsspecObjectStore("relative/folder", name="shared")


def test_an_unknown_protocol_names_it() -> None:
    with pytest.raises(UserError, match="unknown protocol 'nope'"):
        FsspecObjectStore("nope://x/y", name="odd")


def test_object_sizes_lists_one_fan_out_folder_or_all(folder: FsspecObjectStore) -> None:
    digests = {folder.put_bytes(f"object {i}".encode()): len(f"object {i}") for i in range(30)}
    assert folder.object_sizes() == digests
    fan = next(iter(digests)).hexdigest[:2]
    assert folder.object_sizes(fan) == {d: n for d, n in digests.items() if d.hexdigest[:2] == fan}


def test_a_folder_write_error_is_store_unavailable_naming_the_remote(
    folder: FsspecObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(remote_module.tempfile, "mkstemp", full)
    with pytest.raises(StoreUnavailable, match="No space left") as info:
        folder.put_bytes(b"x")
    assert "remote 'shared'" in str(info.value)


def test_remote_store_implements_the_port(folder: FsspecObjectStore) -> None:
    port: ObjectStore = folder
    assert port.url == folder.url


# -- S3 -------------------------------------------------------------------------------------


@pytest.fixture
def s3(s3_server: S3Server) -> FsspecObjectStore:
    return FsspecObjectStore(
        f"s3://{s3_server.make_bucket()}/keel", name="origin", environ=s3_server.env
    )


@pytest.mark.s3
def test_an_s3_put_never_replaces_an_existing_damaged_object(s3: FsspecObjectStore) -> None:
    digest = s3.put_bytes(b"original bytes")
    _s3_damage(s3)(digest)
    assert s3.put_bytes(b"original bytes") == digest
    with pytest.raises(CorruptObject, match="remote 'origin'"):
        s3.get_bytes(digest)
    assert not s3.verify(digest)


@pytest.mark.s3
def test_a_large_file_is_streamed_to_s3_in_parts_and_never_replaces(
    s3: FsspecObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote_module, "SMALL", 1024)
    monkeypatch.setattr(remote_module, "_PART", 5 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom((11 << 20) + 17))
    digest = s3.put_file(src)
    assert s3.size(digest) == src.stat().st_size
    assert s3.verify(digest)
    _s3_damage(s3)(digest)
    assert s3.put_file(src) == digest
    assert not s3.verify(digest)


@pytest.mark.s3
def test_a_file_that_changes_while_it_is_uploaded_creates_nothing(
    s3: FsspecObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote_module, "SMALL", 1024)
    src = tmp_path / "moving.bin"
    src.write_bytes(b"a" * 100_000)
    stale = hash_bytes(b"b" * 100_000)
    monkeypatch.setattr(remote_module, "hash_file", lambda path: (stale, 100_000))
    with pytest.raises(UserError, match="changed while it was being stored"):
        s3.put_file(src)
    assert s3.object_sizes() == {}


@pytest.mark.s3
def test_a_missing_bucket_is_store_unavailable_naming_it(s3_server: S3Server) -> None:
    store = FsspecObjectStore("s3://no-such-bucket-here/keel", name="origin", environ=s3_server.env)
    for call in (
        lambda: store.ref_names(""),
        lambda: store.object_sizes(),
        lambda: store.get_ref("runs/x"),
        lambda: store.get_bytes(hash_bytes(b"x")),
        lambda: store.put_bytes(b"x"),
    ):
        with pytest.raises(StoreUnavailable, match="bucket 'no-such-bucket-here'") as info:
            call()
        assert "remote 'origin'" in str(info.value)


@pytest.mark.s3
def test_missing_credentials_say_what_to_set(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    env = {k: v for k, v in s3_server.env.items() if not k.startswith("AWS_SECRET")}
    store = FsspecObjectStore(f"s3://{s3_server.make_bucket()}/k", name="origin", environ=env)
    with pytest.raises(StoreUnavailable) as info:
        store.ref_names("")
    message = str(info.value)
    assert "remote 'origin'" in message and "AWS_ACCESS_KEY_ID" in message
    assert "\n" not in message


@pytest.mark.s3
def test_an_unreachable_endpoint_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr("s3fs.S3FileSystem.retries", 1)
    env = {
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "b",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    store = FsspecObjectStore("s3://bucket-x/keel", name="origin", environ=env)
    with pytest.raises(StoreUnavailable, match="cannot reach remote 'origin'") as info:
        store.has(hash_bytes(b"x"))
    assert "AWS_ENDPOINT_URL" in str(info.value)


@pytest.mark.s3
def test_an_invalid_bucket_name_is_a_one_line_error(s3_server: S3Server) -> None:
    store = FsspecObjectStore("s3://a/keel", name="origin", environ=s3_server.env)
    with pytest.raises(StoreUnavailable, match="remote 'origin'") as info:
        store.ref_names("")
    assert "\n" not in str(info.value)


def test_s3_without_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec  # noqa: F401  (so that its registry module is loaded)

    registry = sys.modules["fsspec.registry"]
    monkeypatch.setitem(sys.modules, "s3fs", None)
    for protocol in ("s3", "s3a"):
        monkeypatch.delitem(registry._registry, protocol, raising=False)
    with pytest.raises(MissingExtra, match=r"pip install 'keel\[s3\]'"):
        FsspecObjectStore("s3://bucket/keel", name="origin", environ={})


class _NoCredentialsError(Exception):
    __module__ = "botocore.exceptions"


class _EndpointConnectionError(Exception):
    __module__ = "botocore.exceptions"


class _ParamValidationError(Exception):
    __module__ = "botocore.exceptions"


class _SomethingElse(Exception):
    __module__ = "aiobotocore.client"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(_NoCredentialsError("Unable to locate credentials"), "AWS_ACCESS_KEY_ID",
                     id="no-credentials"),
        pytest.param(PermissionError("Access Denied"), "permissions", id="access-denied"),
        pytest.param(_EndpointConnectionError("Could not connect"), "cannot reach",
                     id="unreachable"),
        pytest.param(ConnectionResetError("reset"), "cannot reach", id="connection-reset"),
        pytest.param(_ParamValidationError("Invalid bucket name"), "fix the remote's URL",
                     id="invalid-bucket"),
        pytest.param(OSError(errno.EIO, "Input/output error"), "Input/output error", id="os"),
        pytest.param(_SomethingElse("odd\nfailure"), "odd failure", id="other-foreign"),
    ],
)  # fmt: skip
def test_every_backend_error_becomes_one_line_store_unavailable(
    folder: FsspecObjectStore, monkeypatch: pytest.MonkeyPatch, exc: Exception, expected: str
) -> None:
    def fail(*args: object, **kwargs: object) -> object:
        raise exc

    monkeypatch.setattr(folder._fs, "find", fail)
    with pytest.raises(StoreUnavailable, match=expected) as info:
        folder.ref_names("")
    assert "remote 'shared'" in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is exc


def test_a_bug_in_the_caller_is_not_disguised(
    folder: FsspecObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> object:
        raise TypeError("a bug")

    monkeypatch.setattr(folder._fs, "find", fail)
    with pytest.raises(TypeError):
        folder.ref_names("")


def test_a_missing_object_on_a_folder_is_object_not_found(folder: FsspecObjectStore) -> None:
    folder.put_bytes(b"make the folder")
    with pytest.raises(ObjectNotFound, match="keel pull"):
        folder.get_bytes(hash_bytes(b"absent"))
