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


# Polling starts at 10 microseconds and backs off to 1 ms: a blocking MPI wait spins on a core, which on a
# machine with fewer cores than ranks takes the core the other rank needs to reach the same collective.
_FIRST_POLL_S = 1e-5
_LONGEST_POLL_S = 1e-3


class Work:
    """A pending collective or point-to-point operation; ``wait()`` blocks until it is complete.

    ``test`` returns whether the transfer finished (it also lets MPI make progress); ``finish`` runs once after
    that (an average's division, copying gathered chunks out); ``description`` names the operation in a
    time-out error.
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
            self._block()
            self._complete()
            return True
        limit_s = self._timeout_s if timeout is None else _seconds(timeout)
        deadline = self._started + limit_s if timeout is None else time.monotonic() + limit_s
        pause = _FIRST_POLL_S
        while not self._test():
            if time.monotonic() > deadline:
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
