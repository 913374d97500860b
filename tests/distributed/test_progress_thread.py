"""The MPI group's progress thread and destroy(), without MPI: a stand-in request whose test runs while
destroy() is called from another thread, the moment that once left the thread waiting for ever."""
from __future__ import annotations

import threading

from gradcore.distributed._mpi import MPIProcessGroup, _Pending


class _Request:
    """Completes on its first test, after starting destroy() in another thread and giving it time to run."""

    def __init__(self, group) -> None:
        self.group = group
        self.destroyer = None

    def Test(self) -> bool:
        self.destroyer = threading.Thread(target=self.group.destroy, daemon=True)
        self.destroyer.start()
        self.destroyer.join(0.2)  # destroy() runs as far as it can while the thread tests this request
        return True


class _Comm:
    def Free(self) -> None:
        pass


def _group_without_mpi() -> MPIProcessGroup:
    group = MPIProcessGroup.__new__(MPIProcessGroup)
    group.comm = _Comm()
    group._previous_excepthook = None
    group._lock = threading.Lock()
    group._in_flight = []
    group._work_arrived = threading.Event()
    group._stopping = False
    group._progress_thread = threading.Thread(target=group._make_progress, daemon=True)
    return group


def test_destroy_during_a_progress_poll_ends_the_thread():
    group = _group_without_mpi()
    request = _Request(group)
    group._in_flight.append(_Pending(request, None))
    progress = group._progress_thread
    progress.start()
    group._work_arrived.set()  # as _work() does for a request in flight
    progress.join(10)
    assert not progress.is_alive(), "the progress thread waits for ever after destroy()"
    request.destroyer.join(10)
    assert not request.destroyer.is_alive(), "destroy() never returned"
