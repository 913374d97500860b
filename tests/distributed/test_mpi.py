"""gradcore.distributed and DistributedDataParallel on the "mpi" backend, in ``mpiexec -n 2`` and ``-n 3`` runs.

One ``mpiexec`` run per group of checks (each starts in about half a second); every check of
``mpi_worker.py`` is a test here that reads its result back from every rank.
"""
from __future__ import annotations

import time

import pytest

from mpi_launch import WORKER, check_results, run_mpi

pytestmark = pytest.mark.mpiexec

COLLECTIVES = ["all_reduce_every_op", "all_reduce_async_work", "broadcast_from_each_rank", "all_gather_rows",
               "reduce_scatter_chunks", "reduce_to_each_rank", "gather_and_scatter", "all_to_all_uneven",
               "send_recv_ring", "errors_named_as_pytorch"]
DDP = ["ddp_equals_one_process_sgd_momentum", "ddp_equals_one_process_adam", "ddp_no_sync_accumulation",
       "ddp_find_unused_parameters", "ddp_buckets_overlap_backward",
       "ddp_gradient_as_bucket_view", "ddp_rejects_another_model",
       "ddp_broadcasts_parameters_and_buffers"]

_runs: dict = {}


def _stdout(group: str, ranks: int, env: dict | None = None) -> str:
    key = (group, ranks)
    if key not in _runs:
        _runs[key] = run_mpi(ranks, [WORKER, group], timeout_s=120, env=env).stdout
    return _runs[key]


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("name", COLLECTIVES)
def test_collectives_against_numpy(name: str, ranks: int) -> None:
    check_results(_stdout("collectives", ranks), ranks, name)


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("name", DDP)
def test_distributed_data_parallel(name: str, ranks: int) -> None:
    check_results(_stdout("ddp", ranks), ranks, name)


def test_mismatched_shapes_and_dtypes_named_in_debug_mode() -> None:
    check_results(_stdout("mismatch", 2, env={"TORCH_DISTRIBUTED_DEBUG": "DETAIL"}), 2, "mismatched_shapes_named")


def _failing_run(scenario: str) -> tuple:
    start = time.monotonic()
    result = run_mpi(2, [WORKER, scenario], timeout_s=60, env={"GRADCORE_TEST_TIMEOUT_S": "2"}, check=False)
    return result, time.monotonic() - start


def test_a_rank_that_raises_stops_the_others() -> None:
    result, seconds = _failing_run("raise")
    assert result.returncode != 0
    assert "rank 1 fails on purpose" in result.stderr
    assert "was not stopped" not in result.stdout
    assert seconds < 30


def test_a_rank_that_dies_stops_the_others() -> None:
    result, seconds = _failing_run("exit")
    assert result.returncode != 0
    assert "was not stopped" not in result.stdout
    assert seconds < 30


def test_a_rank_that_does_not_take_part_times_out() -> None:
    result, seconds = _failing_run("stall")
    assert result.returncode != 0
    assert "DistBackendError: [Rank 0] all_reduce (op SUM) of shape [2]" in result.stderr, result.stderr
    assert "timed out after 2 s" in result.stderr
    assert seconds < 30  # rank 1 sleeps for 120 s: the job ended with rank 0's timeout
