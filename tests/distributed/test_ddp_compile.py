"""``DistributedDataParallel`` inside a ``gradcore.compile``d training step, on ``mpiexec -n 2``: a replay runs
the bucket all-reduces as host steps of the program, where the eager call ran them."""
from __future__ import annotations

import pytest

from mpi_launch import WORKER, check_results, run_mpi

pytestmark = pytest.mark.mpiexec

CHECKS = ["compiled_ddp_equals_one_process_sgd_momentum", "compiled_ddp_equals_one_process_adam",
          "compiled_ddp_gradient_as_bucket_view", "compiled_ddp_module_with_backward_outside",
          "compiled_ddp_no_sync_accumulation", "compiled_ddp_broadcasts_buffers",
          "compiled_ddp_find_unused_parameters_runs_eagerly"]

_output: list = []


@pytest.mark.parametrize("name", CHECKS)
def test_compiled_distributed_data_parallel(name: str) -> None:
    if not _output:
        _output.append(run_mpi(2, [WORKER, "compile"], timeout_s=120).stdout)
    check_results(_output[0], 2, name)
