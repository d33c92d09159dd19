"""Task pools run every task and report each one's result or error: local, pool and Dask.

The pools are real: ``pool`` starts two forkserver worker processes, ``dask`` a LocalCluster of
two worker processes on 127.0.0.1 (random ports, no dashboard), shared by this module's tests;
one test starts its own cluster and connects to it by address.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing.managers import SyncManager
from pathlib import Path
from threading import Barrier
from typing import Any

import pytest

from keel.errors import MissingExtra, UserError
from keel.execute import pool as pool_module
from keel.execute.pool import Done, TaskPool, current_worker, open_pool

KINDS = ("local", "pool", "dask")
_HANG_GUARD_S = 60  # only stops a broken test from hanging forever; never a speed limit


# -- tasks: top-level functions, so that worker processes can import them ----------------------


def square(x: int) -> int:
    return x * x


def square_or_fail(x: int) -> int:
    if x % 3 == 0:
        raise ValueError(f"no multiples of three: {x}")
    return x * x


def where_am_i(barrier: Barrier | None) -> tuple[str, int]:
    """This task's worker and pid; with a barrier, once every other task is running too."""
    if barrier is not None:
        barrier.wait(timeout=_HANG_GUARD_S)
    return current_worker(), os.getpid()


def mark_and_wait(args: tuple[str, int]) -> int:
    """Leave a file saying this task started, then take a moment, so that others queue up."""
    folder, index = args
    Path(folder, f"ran-{index}").touch()
    time.sleep(0.2)
    return index


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_pool() -> Iterator[TaskPool]:
    """``open_pool("dask", jobs=2)``: a LocalCluster of two single-thread worker processes."""
    pytest.importorskip("distributed")
    with open_pool("dask", jobs=2) as pool:
        yield pool


@pytest.fixture(params=KINDS)
def make_pool(request: pytest.FixtureRequest) -> Iterator[Callable[[], TaskPool]]:
    """Each kind of pool in turn, with two workers (local has one, in this process)."""
    kind: str = request.param
    opened: list[TaskPool] = []

    def make() -> TaskPool:
        if kind == "dask":
            shared: TaskPool = request.getfixturevalue("dask_pool")
            return shared
        pool = open_pool(kind, jobs=2)
        opened.append(pool)
        return pool

    yield make
    for pool in opened:
        pool.close()


@pytest.fixture(scope="module")
def manager() -> Iterator[SyncManager]:
    """A manager process, whose barriers can be handed to tasks in other processes."""
    with multiprocessing.get_context("spawn").Manager() as started:
        yield started


def _collect(done: Iterator[Done[Any]]) -> dict[int, Done[Any]]:
    return {d.index: d for d in done}


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- choosing a pool -------------------------------------------------------------------------


def test_an_unknown_kind_is_a_user_error_listing_the_kinds() -> None:
    with pytest.raises(UserError, match="unknown executor 'threads'; choose one of local, pool"):
        open_pool("threads")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("jobs", [0, -2])
def test_fewer_than_one_job_is_a_user_error(kind: str, jobs: int) -> None:
    with pytest.raises(UserError, match=f"--jobs must be at least 1, got {jobs}"):
        open_pool(kind, jobs=jobs)


@pytest.mark.parametrize("kind", ["local", "pool"])
def test_a_scheduler_is_only_for_dask(kind: str) -> None:
    with pytest.raises(UserError, match="--scheduler is only for --executor dask"):
        open_pool(kind, scheduler="tcp://127.0.0.1:8786")


def test_the_local_pool_runs_in_this_process_one_task_at_a_time() -> None:
    with open_pool("local") as pool:
        assert (pool.name, pool.parallelism, pool.address) == ("local", 1, None)
        assert [d.result for d in pool.run(where_am_i, [None])] == [(current_worker(), os.getpid())]


def test_jobs_sets_the_process_pool_size() -> None:
    with open_pool("pool", jobs=3) as pool:
        assert (pool.name, pool.parallelism, pool.address) == ("pool", 3, None)


# -- running tasks ---------------------------------------------------------------------------


def test_every_task_runs_and_reports_its_result(make_pool: Callable[[], TaskPool]) -> None:
    pool = make_pool()
    done = _collect(pool.run(square, list(range(10))))
    assert sorted(done) == list(range(10))
    assert {i: d.result for i, d in done.items()} == {i: i * i for i in range(10)}
    assert all(d.error is None for d in done.values())


def test_a_task_that_raises_comes_back_as_its_error_and_the_rest_go_on(
    make_pool: Callable[[], TaskPool],
) -> None:
    pool = make_pool()
    done = _collect(pool.run(square_or_fail, list(range(7))))
    assert sorted(done) == list(range(7))
    for i, d in done.items():
        if i % 3 == 0:
            assert d.result is None
            assert isinstance(d.error, ValueError)
            assert str(d.error) == f"no multiples of three: {i}"
        else:
            assert (d.result, d.error) == (i * i, None)


def test_nothing_to_run_yields_nothing(make_pool: Callable[[], TaskPool]) -> None:
    assert list(make_pool().run(square, [])) == []


def test_running_twice_on_one_pool_gives_each_run_its_own_results(
    make_pool: Callable[[], TaskPool],
) -> None:
    pool = make_pool()
    first = _collect(pool.run(square, [1, 2, 3]))
    second = _collect(pool.run(square, [4, 5, 6]))  # same function, same positions
    assert [first[i].result for i in range(3)] == [1, 4, 9]
    assert [second[i].result for i in range(3)] == [16, 25, 36]


@pytest.mark.parametrize("kind", ["pool", "dask"])
def test_each_worker_process_names_itself_differently(
    kind: str, manager: SyncManager, request: pytest.FixtureRequest
) -> None:
    barrier = manager.Barrier(2)  # both tasks must be running at once: two workers
    if kind == "dask":
        pool: TaskPool = request.getfixturevalue("dask_pool")
        done = _collect(pool.run(where_am_i, [barrier, barrier]))
    else:
        with open_pool("pool", jobs=2) as pool:
            done = _collect(pool.run(where_am_i, [barrier, barrier]))
    places = [d.result for d in done.values()]
    assert all(place is not None for place in places)
    workers = {worker for worker, _pid in places}  # type: ignore[misc]
    pids = {pid for _worker, pid in places}  # type: ignore[misc]
    assert len(workers) == len(pids) == 2
    assert current_worker() not in workers
    assert os.getpid() not in pids
    if kind == "pool":
        host = socket.gethostname()
        assert workers == {f"{host}:{pid}" for pid in pids}


def test_under_dask_a_task_names_its_dask_worker(dask_pool: TaskPool) -> None:
    done = _collect(dask_pool.run(where_am_i, [None] * 6))
    cluster_workers = set(dask_pool._client.scheduler_info()["workers"])  # type: ignore[attr-defined]
    assert len(cluster_workers) == 2
    assert {d.result[0] for d in done.values() if d.result} <= cluster_workers
    assert all(worker.startswith("tcp://127.0.0.1:") for worker in cluster_workers)


def test_the_dask_pool_records_its_scheduler_and_threads(dask_pool: TaskPool) -> None:
    assert dask_pool.name == "dask"
    assert dask_pool.parallelism == 2
    assert dask_pool.address is not None and dask_pool.address.startswith("tcp://127.0.0.1:")


# -- stopping early --------------------------------------------------------------------------


def _wait_until_dask_is_idle(pool: TaskPool) -> None:
    """Wait until the scheduler holds no task (cancelled ones are released asynchronously)."""
    client = pool._client  # type: ignore[attr-defined]
    deadline = time.monotonic() + _HANG_GUARD_S
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
        assert time.monotonic() < deadline, "Dask did not release the cancelled tasks"
        time.sleep(0.05)


def test_closing_the_iterator_early_cancels_the_tasks_not_started(
    make_pool: Callable[[], TaskPool], tmp_path: Path
) -> None:
    pool = make_pool()
    items = [(str(tmp_path), i) for i in range(20)]
    results = pool.run(mark_and_wait, items)
    first = next(results)
    assert first.error is None
    results.close()  # e.g. the caller stopped on a first failure, or was interrupted
    if pool.name == "dask":
        _wait_until_dask_is_idle(pool)
    else:
        pool.close()  # waits for the tasks already running
    ran = len(list(tmp_path.glob("ran-*")))
    assert 1 <= ran < len(items)
    if pool.name == "local":
        assert ran == 1


# -- Dask by address -------------------------------------------------------------------------


def test_a_pool_on_a_running_scheduler_uses_its_workers_and_leaves_it_running() -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        host="127.0.0.1",
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        # The scheduler's health-check HTTP server defaults to port 8787, which the module's
        # cluster may hold already: a random loopback port avoids the warning about it.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster:
        address = cluster.scheduler_address
        (worker,) = cluster.scheduler_info["workers"]
        with open_pool("dask", jobs=4, scheduler=address) as pool:
            assert (pool.address, pool.parallelism) == (address, 1)  # the cluster's, not jobs
            done = _collect(pool.run(where_am_i, [None, None]))
            assert {d.result[0] for d in done.values() if d.result} == {worker}
            assert _collect(pool.run(square_or_fail, [3]))[0].error is not None
        with open_pool("dask", scheduler=address) as again:  # closing the pool kept it up
            assert [d.result for d in again.run(square, [7])] == [49]


def test_an_unreachable_scheduler_is_a_user_error_naming_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("distributed")
    monkeypatch.setattr(pool_module, "CONNECT_TIMEOUT_S", 1)  # the default is 5 s
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with pytest.raises(UserError) as info:
        open_pool("dask", scheduler=address)
    assert type(info.value) is UserError
    assert f"cannot reach the Dask scheduler at {address}" in str(info.value)
    assert "tcp://HOST:PORT" in str(info.value)
    assert isinstance(info.value.__cause__, OSError | TimeoutError)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        pytest.param("notaurl", "missing port number", id="no-port"),
        pytest.param("", "missing port number", id="empty"),
        pytest.param("foo://127.0.0.1:1", "unknown address scheme 'foo'", id="scheme"),
        pytest.param("tcp://127.0.0.1:99999", "port 99999 is out of range", id="port-range"),
        pytest.param("tcp://127.0.0.1:http", "invalid literal", id="port-name"),
    ],
)
def test_a_malformed_scheduler_address_is_a_user_error_at_once(address: str, reason: str) -> None:
    pytest.importorskip("distributed")
    with pytest.raises(UserError, match="is not a Dask scheduler address") as info:
        open_pool("dask", scheduler=address)
    assert repr(address) in str(info.value)
    assert reason in str(info.value)
    assert "tcp://HOST:PORT" in str(info.value)


def test_without_distributed_the_error_names_the_pip_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(MissingExtra, match=r"pip install 'keel\[dask\]'") as info:
        open_pool("dask", jobs=1)
    assert isinstance(info.value, ImportError)


def test_current_worker_outside_a_pool_is_this_host_and_process() -> None:
    assert current_worker() == f"{socket.gethostname()}:{os.getpid()}"
