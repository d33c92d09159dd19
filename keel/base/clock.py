"""Clocks: the system clock in production, a fixed one in tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where keel reads the time; implementations must return timezone-aware UTC datetimes."""

    def now(self) -> datetime:
        """The current time, UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """The current time, UTC."""
        return datetime.now(UTC)


@dataclass(slots=True)
class FixedClock:
    """A clock for tests: starts at ``start`` and advances by ``step`` on every read."""

    start: datetime
    step: timedelta = field(default_factory=lambda: timedelta(seconds=1))
    _reads: int = 0

    def now(self) -> datetime:
        """The fixed start plus ``step`` per earlier read."""
        value = self.start + self.step * self._reads
        self._reads += 1
        return value


def iso(ts: datetime) -> str:
    """ISO 8601 with microseconds and a Z suffix, the form manifests store."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
