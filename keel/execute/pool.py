"""Task pools: where many independent tasks (sweep trials, pipeline stages) run.

``local`` runs tasks one at a time in this process; ``pool`` in N local worker processes;
``dask`` on a Dask distributed cluster (a scheduler by address, or a ``LocalCluster`` bound to
127.0.0.1 when no address is given). A task is a picklable top-level function and a picklable
argument; results come back as tasks finish, in whatever order that is.

Each task learns where it runs from :func:`current_worker`, so its manifest records it.

Every pool reports each task's outcome on its own (:class:`Done`): a task that raises comes back
with its exception and the others go on.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import uuid
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from keel.errors import MissingExtra, UserError

T = TypeVar("T")
R = TypeVar("R")
PoolKind = Literal["local", "pool", "dask"]
POOL_KINDS: tuple[PoolKind, ...] = ("local", "pool", "dask")
CONNECT_TIMEOUT_S = 5  # an unreachable Dask scheduler is reported after this long


@dataclass(frozen=True, slots=True)
class Done(Generic[R]):
    """A finished task: its position in the submitted sequence and its result or exception."""

    index: int
    result: R | None = None
    error: BaseException | None = None


class TaskPool(AbstractContextManager["TaskPool"]):
    """Runs tasks; ``name`` and ``parallelism`` are recorded in each run's manifest."""

    name: PoolKind = "local"
    parallelism: int = 1
    address: str | None = None

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Generator[Done[R], None, None]:
        """Run ``fn(item)`` for every item; yield each as it finishes.

        Closing the iterator early (or an interrupt while waiting) cancels the tasks not yet
        started; tasks already running finish on their own.
        """
        for index, item in enumerate(items):
            try:
                yield Done(index, fn(item))
            except Exception as exc:
                yield Done(index, error=exc)

    def close(self) -> None:
        """Release workers (and a cluster started by this pool)."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LocalPool(TaskPool):
    """One task at a time, in this process."""

    name: PoolKind = "local"


def _ignore_sigint() -> None:
    # Workers leave Ctrl-C to the parent, which cancels what has not started; a running trial
    # still stops its own child (the executor forwards the signal while it waits).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessPool(TaskPool):
    """``jobs`` worker processes on this machine (started fresh, never forked from keel)."""

    name: PoolKind = "pool"

    def __init__(self, jobs: int) -> None:
        import multiprocessing

        self.parallelism = jobs
        ctx = multiprocessing.get_context("forkserver")
        self._pool = ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=_ignore_sigint
        )

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Generator[Done[R], None, None]:
        futures: dict[Future[R], int] = {}
        pending = iter(enumerate(items))
        try:
            # Keep at most 2 x jobs queued, so an interrupt leaves little to cancel.
            for index, item in pending:
                futures[self._pool.submit(fn, item)] = index
                if len(futures) >= 2 * self.parallelism:
                    break
            while futures:
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = futures.pop(future)
                    error = future.exception()
                    if error is None:
                        yield Done(index, future.result())
                    else:
                        yield Done(index, error=error)
                    nxt = next(pending, None)
                    if nxt is not None:
                        futures[self._pool.submit(fn, nxt[1])] = nxt[0]
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskPool(TaskPool):
    """A Dask distributed cluster: the scheduler at ``address``, or a new loopback LocalCluster."""

    name: PoolKind = "dask"

    def __init__(self, jobs: int, address: str | None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise MissingExtra(
                "--executor dask needs Dask distributed; install it with: pip install 'keel[dask]'"
            ) from exc
        self._cluster: Any = None
        self._client: Any = None
        if address is None:
            self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                scheduler_port=0,
                # Without a dashboard the scheduler still serves health checks over HTTP, by
                # default on port 8787 of every interface: a second cluster would warn and move.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
            address = self._cluster.scheduler_address
        else:
            # Checked before Client() sees it: a Client that fails on a malformed address is
            # left half-started, and closing it when it is collected blocks for seconds.
            _check_address(address)
        try:
            self._client = Client(  # type: ignore[no-untyped-call]
                address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False
            )
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            raise UserError(
                f"cannot reach the Dask scheduler at {address}: {exc}; check the address "
                "(tcp://HOST:PORT) and that the scheduler is running"
            ) from exc
        self.address = str(address)
        workers = self._client.scheduler_info().get("workers", {})
        self.parallelism = sum(int(w.get("nthreads", 1)) for w in workers.values()) or jobs

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Generator[Done[R], None, None]:
        from distributed import as_completed

        batch = uuid.uuid4().hex[:12]  # keys must not repeat across runs: Dask would reuse them
        futures = {
            self._client.submit(fn, item, pure=False, key=f"keel-task-{batch}-{i}"): i
            for i, item in enumerate(items)
        }
        try:
            with self._client.as_current():
                finished = as_completed(list(futures))  # type: ignore[no-untyped-call]
            for future in finished:
                index = futures.pop(future)
                if future.status == "error":
                    yield Done(index, error=future.exception())
                elif future.status == "cancelled":
                    yield Done(index, error=UserError("the Dask task was cancelled"))
                else:
                    yield Done(index, future.result())
        finally:
            if futures:
                self._client.cancel(list(futures))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _check_address(address: str) -> None:
    """Raise UserError unless ``address`` reads as a scheduler address (``tcp://HOST:PORT``)."""
    from distributed.comm.addressing import get_address_host_port

    try:
        _host, port = get_address_host_port(address)
    except ValueError as exc:
        reason = str(exc)
    else:
        if 0 < port < 65536:
            return
        reason = f"port {port} is out of range"
    raise UserError(
        f"--scheduler {address!r} is not a Dask scheduler address ({reason}); "
        "give it as tcp://HOST:PORT, for example tcp://127.0.0.1:8786"
    )


def open_pool(kind: str, *, jobs: int | None = None, scheduler: str | None = None) -> TaskPool:
    """The pool for ``--executor kind [--jobs N] [--scheduler ADDRESS]``.

    Raises:
        keel.errors.UserError: unknown kind, a bad job count, a scheduler for a non-dask pool,
            or an unreachable scheduler.
    """
    if kind not in POOL_KINDS:
        raise UserError(f"unknown executor {kind!r}; choose one of {', '.join(POOL_KINDS)}")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    if scheduler is not None and kind != "dask":
        raise UserError("--scheduler is only for --executor dask")
    if kind == "local":
        return LocalPool()
    n = jobs or os.cpu_count() or 1
    if kind == "pool":
        return ProcessPool(n)
    return DaskPool(n, scheduler)


def current_worker() -> str:
    """Where this task runs: the Dask worker's address, else ``host:pid``."""
    distributed = sys.modules.get("distributed")  # never import Dask just to ask
    if distributed is not None:
        try:
            return str(distributed.get_worker().address)
        except ValueError:
            pass
    return f"{socket.gethostname()}:{os.getpid()}"
