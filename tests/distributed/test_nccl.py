"""The "nccl" backend on the CuPy test double with a fake ``cupy.cuda.nccl`` (``fake_nccl.py``), no GPU needed:
in this process with world size 1, and under ``mpiexec -n 2`` with the fake communicator reducing over MPI.
On a machine with a GPU and NCCL, the last test runs the real thing with world size 1."""
from __future__ import annotations

import datetime
import threading
import time

import numpy as np
import pytest

import fake_nccl
import gradcore
import gradcore.distributed as dist
from gradcore import nn
from gradcore.distributed._store import share_bytes
from gradcore.nn.parallel import DistributedDataParallel
from mpi_launch import check_results, run_mpi

NCCL_WORKER = __file__.replace("test_nccl.py", "nccl_worker.py")


@pytest.fixture
def nccl_group(fake_cuda, monkeypatch):
    """A world-size-1 "nccl" default group on the double; destroyed after the test."""
    fake_nccl.install(fake_cuda, monkeypatch.setattr)
    fake_nccl.NcclCommunicator.calls.clear()
    for name in ("RANK", "WORLD_SIZE", "PMI_RANK", "PMI_SIZE"):
        monkeypatch.delenv(name, raising=False)
    dist.init_process_group("nccl", rank=0, world_size=1)
    yield dist._default_group
    if dist.is_initialized():
        dist.destroy_process_group()


def test_collectives_on_the_side_stream(nccl_group) -> None:
    assert dist.get_backend() == "nccl" and dist.get_world_size() == 1 and dist.get_rank() == 0
    values = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    t = gradcore.tensor(values, device="cuda")
    work = dist.all_reduce(t, op=dist.ReduceOp.SUM, async_op=True)
    call = fake_nccl.NcclCommunicator.calls[-1]
    assert call["name"] == "allReduce" and call["count"] == 6
    assert call["datatype"] == fake_nccl.nccl.NCCL_FLOAT32
    # Queued on the backend's own stream, after waiting for the caller's stream; wait() makes the caller's
    # stream wait for the collective's event, without blocking the host.
    side = nccl_group.stream
    assert call["stream"] == side.ptr != fake_nccl.current_stream.ptr
    assert side.waited_for and side.waited_for[-1].stream is fake_nccl.current_stream
    before = len(fake_nccl.current_stream.waited_for)
    assert work.wait() is True and work.is_completed()
    assert fake_nccl.current_stream.waited_for[before].stream is side
    np.testing.assert_array_equal(t.cpu().numpy(), values)
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    np.testing.assert_array_equal(t.cpu().numpy(), values)
    gathered = [gradcore.zeros(2, 3, device="cuda")]
    dist.all_gather(gathered, t)
    np.testing.assert_array_equal(gathered[0].cpu().numpy(), values)
    out = gradcore.zeros(2, 3, device="cuda")
    dist.reduce_scatter(out, [t * 2])
    np.testing.assert_array_equal(out.cpu().numpy(), values * 2)
    dist.broadcast(t, src=0)
    dist.barrier()
    names = [c["name"] for c in fake_nccl.NcclCommunicator.calls]
    assert names[:4] == ["allReduce", "allReduce", "allGather", "reduceScatter"] and "bcast" in names


def test_rooted_collectives_and_all_to_all_on_the_side_stream(nccl_group) -> None:
    values = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    t = gradcore.tensor(values, device="cuda")
    dist.reduce(t, dst=0, op=dist.ReduceOp.SUM)
    np.testing.assert_array_equal(t.cpu().numpy(), values)
    gathered = [gradcore.zeros(2, 3, device="cuda")]
    dist.gather(t, gathered, dst=0)
    np.testing.assert_array_equal(gathered[0].cpu().numpy(), values)
    out = gradcore.zeros(2, 3, device="cuda")
    dist.scatter(out, [t * 3], src=0)
    np.testing.assert_array_equal(out.cpu().numpy(), values * 3)
    received = [gradcore.zeros(4, device="cuda")]
    dist.all_to_all(received, [gradcore.arange(4.0, device="cuda")])
    assert received[0].cpu().tolist() == [0.0, 1.0, 2.0, 3.0]
    calls = fake_nccl.NcclCommunicator.calls
    assert [c["name"] for c in calls[:2]] == ["reduce", "send"] and calls[0]["root"] == 0
    # gather, scatter and all_to_all are a send and a receive each (to and from oneself), in NCCL groups.
    assert [c["name"] for c in calls[1:]] == ["send", "recv"] * 3
    assert all(c["stream"] == nccl_group.stream.ptr for c in calls)


def test_cpu_tensor_and_unknown_dtype_refused(nccl_group) -> None:
    with pytest.raises(ValueError, match="backend 'nccl' does not support cpu tensors"):
        dist.all_reduce(gradcore.ones(2, device="cpu"))
    with pytest.raises(ValueError, match="Tensors must be contiguous"):
        dist.all_reduce(gradcore.ones(3, 2, device="cuda").t())
    with pytest.raises(ValueError, match="cannot transfer tensors of dtype complex64"):
        nccl_group._datatype(np.zeros(1, np.complex64))


def test_ddp_on_cuda_world_size_1(nccl_group) -> None:
    gradcore.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    reference = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    reference.load_state_dict(model.state_dict())
    reference.cpu()  # under pytest --device fake-cuda the default device is the double's
    model.cuda()
    ddp = DistributedDataParallel(model, bucket_cap_mb=0.0001)
    x = gradcore.randn(5, 4, device="cpu")
    ddp(x.cuda()).pow(2).sum().backward()
    reference(x).pow(2).sum().backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)  # float32 GEMMs
    reduces = [c for c in fake_nccl.NcclCommunicator.calls if c["name"] == "allReduce"]
    assert len(reduces) == len(ddp._buckets) > 1


# -- bounded waits: a communicator whose peers never join -------------------------------------------------
TIMEOUT_S = 0.4


@pytest.fixture
def hung_group(fake_cuda, monkeypatch):
    """A world-size-1 "nccl" group with a timeout of TIMEOUT_S whose communicator never completes an operation."""
    fake_nccl.install(fake_cuda, monkeypatch.setattr)
    fake_nccl.NcclCommunicator.calls.clear()
    for name in ("RANK", "WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "TORCH_NCCL_BLOCKING_WAIT"):
        monkeypatch.delenv(name, raising=False)

    def start(blocking_wait: bool = False):
        if blocking_wait:
            monkeypatch.setenv("TORCH_NCCL_BLOCKING_WAIT", "1")
        dist.init_process_group("nccl", rank=0, world_size=1, timeout=datetime.timedelta(seconds=TIMEOUT_S))
        group = dist._default_group
        group.comm.hang = True
        return group
    yield start
    if dist.is_initialized():
        dist.destroy_process_group()  # after an abort: returns at once, the communicator is gone


def _aborted() -> bool:
    return any(c["name"] == "abort" for c in fake_nccl.NcclCommunicator.calls)


def test_pytorch_error_type_for_a_timed_out_collective() -> None:
    torch = pytest.importorskip("torch")
    # PyTorch raises torch.distributed.DistBackendError, a DistError and so a RuntimeError.
    assert [c.__name__ for c in dist.DistBackendError.__mro__[:4]] == \
        [c.__name__ for c in torch.distributed.DistBackendError.__mro__[:4]]
    assert issubclass(dist.DistBackendError, RuntimeError)


def test_wait_with_a_timeout_blocks_the_host_then_aborts(hung_group) -> None:
    group = hung_group()
    t = gradcore.ones(6, device="cuda")
    work = dist.all_reduce(t, async_op=True)
    assert not work.is_completed()
    start = time.monotonic()
    with pytest.raises(dist.DistBackendError) as caught:
        work.wait(timeout=datetime.timedelta(seconds=0.1))
    assert 0.1 <= time.monotonic() - start < 5
    message = str(caught.value)
    assert "[Rank 0] Work WorkNCCL(SeqNum=1, OpType=ALLREDUCE, NumelIn=6, NumelOut=6, Timeout(ms)=100) timed out " \
           "in blocking wait" in message, message
    assert "all_reduce (op SUM) of shape [6]" in message
    assert _aborted() and group.comm.aborted
    # The group cannot be used any more: every later collective says why.
    with pytest.raises(dist.DistBackendError, match="communicator was aborted after a collective timed out"):
        dist.all_reduce(t)
    with pytest.raises(dist.DistBackendError):
        work.is_completed()


def test_blocking_wait_bounds_a_plain_collective(hung_group) -> None:
    hung_group(blocking_wait=True)
    start = time.monotonic()
    with pytest.raises(dist.DistBackendError, match=r"OpType=BROADCAST, NumelIn=3, NumelOut=3, Timeout\(ms\)=400"):
        dist.broadcast(gradcore.ones(3, device="cuda"), src=0)
    assert TIMEOUT_S <= time.monotonic() - start < 5
    assert _aborted()


def test_the_watchdog_aborts_a_collective_nobody_waits_for(hung_group) -> None:
    group = hung_group()
    t = gradcore.ones(2, 3, device="cuda")
    dist.all_reduce(t)  # returns at once: only the caller's stream waits
    assert group.stream.stuck and not _aborted()
    deadline = time.monotonic() + 10
    while not _aborted() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _aborted(), "the watchdog did not abort the communicator"
    assert not group.stream.stuck  # the abort released what was queued behind the collective
    with pytest.raises(dist.DistBackendError) as caught:
        dist.all_reduce(t)
    message = str(caught.value)
    assert "Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1, OpType=ALLREDUCE, NumelIn=6, " \
           "NumelOut=6, Timeout(ms)=400) ran for" in message, message


def test_a_host_wait_raises_when_the_watchdog_aborts_first(hung_group) -> None:
    # The wait's own deadline (5 s) is later than the group's timeout: the watchdog aborts first, which lets
    # the collective's event complete with undefined data; the wait must still raise, not return.
    hung_group()
    work = dist.all_reduce(gradcore.ones(2, device="cuda"), async_op=True)
    start = time.monotonic()
    with pytest.raises(dist.DistBackendError, match="Watchdog caught collective operation timeout"):
        work.wait(timeout=5.0)
    assert time.monotonic() - start < 4


@pytest.mark.parametrize("what", ["barrier", "debug handshake"])
def test_host_waits_of_the_backend_are_bounded(hung_group, what: str) -> None:
    group = hung_group()
    start = time.monotonic()
    with pytest.raises(dist.DistBackendError, match="timeout"):
        if what == "barrier":
            group.barrier()  # dist.barrier() has nothing to wait for at world size 1
        else:
            group.exchange_objects(("ALLREDUCE", [[2]]), "the collective check before ALLREDUCE")
    assert TIMEOUT_S <= time.monotonic() - start < 5
    assert _aborted()


def test_compiled_ddp_step_all_reduces_on_every_replay(nccl_group) -> None:
    import warnings
    gradcore.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    reference = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    reference.load_state_dict(model.state_dict())
    reference.cpu()
    model.cuda()
    ddp = DistributedDataParallel(model, bucket_cap_mb=0.0001)
    optimizer = gradcore.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    reference_optimizer = gradcore.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)

    @gradcore.compile
    def step(x):
        optimizer.zero_grad()
        loss = ddp(x).pow(2).sum()
        loss.backward()
        optimizer.step()
        return loss

    generator = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(5):
            x = gradcore.tensor(generator.standard_normal((5, 4)).astype(np.float32), device="cpu")
            before = len(fake_nccl.NcclCommunicator.calls)
            loss = step(x.cuda())
            reduces = [c for c in fake_nccl.NcclCommunicator.calls[before:] if c["name"] == "allReduce"]
            assert len(reduces) == len(ddp._buckets) > 1
            reference_optimizer.zero_grad()
            expected = reference(x).pow(2).sum()
            expected.backward()
            reference_optimizer.step()
            np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-5)
    # Captured without, then with the momentum buffers, verified once, then replayed.
    assert step.stats == {"captures": 3, "replays": 2, "eager": 0}, step.stats
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.detach().cpu().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_init_needs_rank_and_world_size(fake_cuda, monkeypatch) -> None:
    fake_nccl.install(fake_cuda, monkeypatch.setattr)
    for name in ("RANK", "WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="environment variable RANK expected, but not set"):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()


def test_tcp_store_hands_rank_0_bytes_to_the_others() -> None:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    received = {}

    def rank(r: int) -> None:
        received[r] = share_bytes(b"unique id" if r == 0 else None, r, 3, "127.0.0.1", port, 20.0)
    threads = [threading.Thread(target=rank, args=(r,)) for r in (2, 1, 0)]  # the others start before rank 0
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert received == {0: b"unique id", 1: b"unique id", 2: b"unique id"}


def test_tcp_store_times_out_without_rank_0() -> None:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(dist.DistError, match=r"\[Rank 1\] timed out after 0.5 s reaching rank 0"):
        share_bytes(None, 1, 2, "127.0.0.1", port, 0.5)


@pytest.mark.mpiexec
@pytest.mark.parametrize("name", ["nccl_collectives", "nccl_ddp_equals_one_process"])
def test_two_ranks_through_the_fake_communicator(name: str) -> None:
    global _two_rank_output
    if _two_rank_output is None:
        _two_rank_output = run_mpi(2, [NCCL_WORKER]).stdout
    check_results(_two_rank_output, 2, name)


_two_rank_output = None


def test_on_a_gpu_world_size_1() -> None:
    """Runs only where CuPy sees a GPU and NCCL is installed (``pytest tests/distributed`` on a GPU machine)."""
    from gradcore.backend import cuda as cuda_backend
    if not gradcore.cuda.is_available() or getattr(cuda_backend._cupy, "__version__", "") == "0.0-fake":
        pytest.skip("no GPU: the NCCL backend ran on the CuPy test double above")
    if not dist.is_nccl_available():
        pytest.skip("NCCL is not installed: pip install 'gradcore[cuda]'")
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        t = gradcore.arange(10.0, device="cuda")
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        out = [gradcore.zeros(10, device="cuda")]
        dist.all_gather(out, t)
        assert out[0].tolist() == list(range(10)) and t.tolist() == list(range(10))
    finally:
        dist.destroy_process_group()
