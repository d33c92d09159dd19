"""Task pools: where many independent tasks (sweep trials, pipeline stages) run.

``local`` runs tasks one at a time in this process; ``pool`` in N local worker processes;
``dask`` on a Dask distributed cluster (a scheduler by address, or a ``LocalCluster`` bound to
127.0.0.1 when no address is given). A task is a picklable top-level function and a picklable
argument; results come back as tasks finish, in whatever order that is.

Each task learns where it runs from :func:`current_worker`, so its manifest records it.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
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

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[Done[R]]:
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

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[Done[R]]:
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
                    yield Done(index, error=error) if error else Done(index, future.result())
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
        if address is None:
            self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                scheduler_port=0,
            )
            address = self._cluster.scheduler_address
        try:
            self._client: Any = Client(  # type: ignore[no-untyped-call]
                address, timeout="10s", set_as_default=False
            )
        except (OSError, TimeoutError) as exc:
            self.close()
            raise UserError(
                f"cannot reach the Dask scheduler at {address}: {exc}; check the address "
                "(tcp://HOST:PORT) and that the scheduler is running"
            ) from exc
        self.address = str(address)
        workers = self._client.scheduler_info().get("workers", {})
        self.parallelism = sum(int(w.get("nthreads", 1)) for w in workers.values()) or jobs

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[Done[R]]:
        from distributed import as_completed

        futures = {
            self._client.submit(
                fn, item, pure=False, key=f"keel-task-{os.getpid()}-{i}-{id(fn)}"
            ): i
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
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


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
    if "distributed" in sys.modules:  # never import Dask just to ask
        try:
            return str(sys.modules["distributed"].get_worker().address)
        except ValueError:
            pass
    return f"{socket.gethostname()}:{os.getpid()}"
