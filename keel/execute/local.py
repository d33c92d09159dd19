"""LocalExecutor: runs the command as a child process of this one.

The child gets its own session (process group), so a terminal Ctrl-C reaches keel only; keel
forwards it to the whole group, waits a grace period, then kills the group. The run is then
recorded as ``killed`` with every byte of output captured so far.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import IO

from keel.errors import ExecutionError
from keel.execute.executor import ExecRequest, ExecResult, OutputCallback
from keel.model.run import RunStatus

log = logging.getLogger(__name__)
GRACE_S = 5.0
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class LocalExecutor:
    """Run one command at a time on this machine."""

    name = "local"
    parallelism = 1

    def __init__(self, *, grace_s: float = GRACE_S) -> None:
        self._grace_s = grace_s

    def execute(self, request: ExecRequest) -> ExecResult:
        """Start the child, tee its output to the log files and the callback, wait for it."""
        started = datetime.now(UTC)
        t0 = time.monotonic()
        with open(request.stdout_path, "wb") as out, open(request.stderr_path, "wb") as err:
            try:
                proc = subprocess.Popen(
                    list(request.argv),
                    cwd=request.cwd,
                    env=dict(request.env),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ExecutionError(
                    f"cannot start {request.argv[0]!r} in {request.cwd}: {exc.strerror}; "
                    "check the experiment's command and that the program is on PATH"
                ) from exc
            pumps = [
                _pump(proc.stdout, out, "stdout", request.on_output),
                _pump(proc.stderr, err, "stderr", request.on_output),
            ]
            stop = _Stopper(proc, self._grace_s)
            stop.arm_timeout(request.timeout_s)
            with _forward_signals(stop):
                proc.wait()  # PEP 475: the handler runs, then waitpid resumes
            stop.cancel()
            for t in pumps:
                t.join()
        return _result(proc, started, time.monotonic() - t0, stop)


def _pump(src: IO[bytes] | None, dst: IO[bytes], name: str, cb: OutputCallback) -> threading.Thread:
    def run() -> None:
        assert src is not None
        fd = src.fileno()
        while chunk := os.read(fd, 65536):
            dst.write(chunk)
            dst.flush()
            try:
                cb(name, chunk)
            except Exception:  # a broken terminal must not lose the log
                log.debug("output callback failed", exc_info=True)
        src.close()

    thread = threading.Thread(target=run, name=f"keel-{name}", daemon=True)
    thread.start()
    return thread


class _Stopper:
    """Stops the child's process group: the signal first, SIGKILL after the grace period."""

    def __init__(self, proc: subprocess.Popen[bytes], grace_s: float) -> None:
        self.proc = proc
        self.grace_s = grace_s
        self.requested: signal.Signals | None = None
        self.timed_out = False
        self._timers: list[threading.Timer] = []

    def request(self, sig: signal.Signals) -> None:
        """Forward ``sig`` to the child's group; the first request arms the SIGKILL timer."""
        if self.requested is None:
            self.requested = sig
            self._after(self.grace_s, lambda: self._send(signal.SIGKILL))
        self._send(sig if sig != signal.SIGHUP else signal.SIGTERM)

    def arm_timeout(self, timeout_s: float | None) -> None:
        """Stop the child with SIGTERM once ``timeout_s`` has passed."""
        if timeout_s is not None:
            self._after(timeout_s, self._on_timeout)

    def cancel(self) -> None:
        """Disarm every pending timer (the child has ended)."""
        for t in self._timers:
            t.cancel()

    def _on_timeout(self) -> None:
        self.timed_out = True
        self.request(signal.SIGTERM)

    def _after(self, delay: float, fn: Callable[[], None]) -> None:
        timer = threading.Timer(delay, fn)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _send(self, sig: signal.Signals) -> None:
        if self.proc.returncode is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass


@contextmanager
def _forward_signals(stop: _Stopper) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.request(signal.Signals(signum))

    previous = {s: signal.signal(s, handler) for s in _FORWARDED}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _result(
    proc: subprocess.Popen[bytes],
    started: datetime,
    duration: float,
    stop: _Stopper,
) -> ExecResult:
    code = proc.returncode
    sig = signal.Signals(-code).name if code < 0 else None
    if stop.timed_out:
        status, reason = RunStatus.KILLED, "timeout"
    elif stop.requested is not None:
        status, reason = RunStatus.KILLED, f"stopped by {stop.requested.name}"
    elif code == 0:
        status, reason = RunStatus.SUCCEEDED, None
    elif sig is not None:
        status, reason = RunStatus.KILLED, f"child ended by {sig}"
    else:
        status, reason = RunStatus.FAILED, f"exit code {code}"
    return ExecResult(
        status=status,
        exit_code=code if code >= 0 else None,
        signal=sig,
        started_at=started,
        ended_at=datetime.now(UTC),
        duration_s=round(duration, 6),
        pid=proc.pid,
        reason=reason,
    )
