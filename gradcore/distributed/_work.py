"""``Work``: the handle a collective returns with ``async_op=True``, and the bounded wait behind every collective."""
from __future__ import annotations

import time
from typing import Callable


class DistError(RuntimeError):
    """Raised when an error occurs in the distributed library (``torch.distributed.DistError``)."""

    __module__ = "gradcore.distributed"


class DistBackendError(DistError):
    """Raised when a backend error occurs, a timed-out collective included (``torch.distributed.DistBackendError``)."""

    __module__ = "gradcore.distributed"


# MPI moves a non-blocking collective on only while it is polled (each poll may complete one round of a
# multi-round algorithm), so a wait first polls without pause, yielding the core between polls, for up to
# _SPIN_S; a longer wait (another rank is late) then sleeps between polls, backing off from 10 microseconds to
# 1 ms, so as not to hold a core that a late rank needs on a machine with fewer cores than ranks. A blocking
# MPI wait would spin for as long as it takes, with no bound.
_SPIN_S = 0.05
_FIRST_POLL_S = 1e-5
_LONGEST_POLL_S = 1e-3


class Work:
    """A pending collective or point-to-point operation; ``wait()`` blocks until it is complete.

    ``test`` returns whether the transfer finished (it also lets MPI make progress); ``finish`` runs once after
    that (an average's division, copying gathered chunks out); ``description`` names the operation in a
    time-out error. ``block(timeout_s)``, when given, replaces the host's polling in ``wait`` (NCCL: the
    caller's stream waits, and the host only when asked to, within ``timeout_s`` or the group's timeout).
    """

    def __init__(self, test: Callable[[], bool], description: str, timeout_s: float, rank: int,
                 finish: Callable[[], None] | None = None, block: Callable[[], None] | None = None) -> None:
        self._test = test
        self._finish = finish
        self._block = block
        self._description = description
        self._timeout_s = timeout_s
        self._rank = rank
        self._completed = False
        self._started = time.monotonic()

    def _complete(self) -> None:
        self._completed = True
        if self._finish is not None:
            finish, self._finish = self._finish, None
            finish()

    def is_completed(self) -> bool:
        """Returns whether the operation finished (without blocking)."""
        if not self._completed and self._test():
            self._complete()
        return self._completed

    def is_success(self) -> bool:
        return self.is_completed()

    def wait(self, timeout=None) -> bool:
        """Waits for the operation to finish; raises ``DistBackendError`` once the group's timeout has passed."""
        if self._completed:
            return True
        if self._block is not None:  # a device stream waits instead of the host (NCCL)
            self._block(None if timeout is None else _seconds(timeout))
            self._complete()
            return True
        limit_s = self._timeout_s if timeout is None else _seconds(timeout)
        deadline = self._started + limit_s if timeout is None else time.monotonic() + limit_s
        spin_until = time.monotonic() + _SPIN_S
        pause = _FIRST_POLL_S
        while not self._test():
            now = time.monotonic()
            if now < spin_until:
                time.sleep(0)  # a yield: a rank waiting for this one may take the core
                continue
            if now > deadline:
                raise DistBackendError(
                    f"[Rank {self._rank}] {self._description} timed out after {limit_s:g} s: another rank did not "
                    "take part (it may have failed, exited or be running a different collective)")
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_POLL_S)
        self._complete()
        return True

    def __repr__(self) -> str:
        state = "completed" if self._completed else "pending"
        return f"<Work {self._description} ({state})>"


def _seconds(timeout) -> float:
    """A timeout given as a ``datetime.timedelta`` or a number of seconds, in seconds."""
    return timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)


def completed_work(rank: int, description: str) -> Work:
    """A work handle for an operation that had nothing to wait for."""
    work = Work(lambda: True, description, 0.0, rank)
    work._completed = True
    return work
