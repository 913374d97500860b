"""The "nccl" backend under ``mpiexec -n 2`` on the CuPy test double, with the fake communicator of
``fake_nccl.py`` reducing over MPI; the unique id travels over MPI as in a real run. Started by test_nccl.py."""
from __future__ import annotations

import os
import sys
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(os.path.dirname(HERE)), os.path.join(os.path.dirname(HERE), "devices"), HERE]

import fake_cupy  # noqa: E402
import fake_nccl  # noqa: E402
import gradcore as torch  # noqa: E402
import gradcore.distributed as dist  # noqa: E402
from gradcore import nn  # noqa: E402
from gradcore.backend import cuda as cuda_backend  # noqa: E402
from gradcore.nn.parallel import DistributedDataParallel  # noqa: E402


def install_doubles() -> None:
    # As tests/conftest.py's install_fake_cupy does, for this process as a whole.
    fake_cupy.reset(1)
    for name, value in zip(("_cupy", "_cupyx", "_import_error", "_device_count", "_device_error", "_backends"),
                           (fake_cupy, fake_cupy.cupyx, None, None, None, {})):
        setattr(cuda_backend, name, value)
    fake_nccl.install(fake_cupy, lambda target, name, value, raising=True: setattr(target, name, value))


def nccl_collectives(rank: int, size: int) -> None:
    t = torch.tensor([1.0, 2.0, 3.0], device="cuda") * (rank + 1)
    dist.all_reduce(t)
    assert t.cpu().tolist() == [3.0, 6.0, 9.0], t
    t = torch.tensor([1.0, 2.0], device="cuda") * (rank + 1)
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    assert t.cpu().tolist() == [1.5, 3.0], t
    b = torch.full((2,), float(rank), device="cuda")
    dist.broadcast(b, src=1)
    assert b.cpu().tolist() == [1.0, 1.0]
    rows = [torch.zeros(2, device="cuda") for _ in range(size)]
    dist.all_gather(rows, torch.full((2,), float(rank + 5), device="cuda"))
    assert [r.cpu().tolist() for r in rows] == [[5.0, 5.0], [6.0, 6.0]]
    out = torch.zeros(1, device="cuda")
    dist.reduce_scatter(out, [torch.full((1,), float(10 * i + rank), device="cuda") for i in range(size)])
    assert out.cpu().tolist() == [20.0 * rank + 1.0], out
    peer = 1 - rank
    if rank == 0:
        dist.send(torch.full((3,), 4.0, device="cuda"), dst=peer)
    else:
        got = torch.zeros(3, device="cuda")
        assert dist.recv(got, src=peer) == peer and got.cpu().tolist() == [4.0] * 3
    everyone = np.stack([np.arange(4.0) + 10 * r for r in range(size)]).astype(np.float32)
    for dst in range(size):
        t = torch.tensor(everyone[rank], device="cuda")
        dist.reduce(t, dst=dst, op=dist.ReduceOp.MAX)
        assert t.cpu().tolist() == (everyone.max(0) if rank == dst else everyone[rank]).tolist()
        gathered = [torch.zeros(4, device="cuda") for _ in range(size)] if rank == dst else None
        dist.gather(torch.tensor(everyone[rank], device="cuda"), gathered, dst=dst)
        if rank == dst:
            assert [g.cpu().tolist() for g in gathered] == everyone.tolist()
        pieces = [torch.tensor(everyone[r] * (dst + 1), device="cuda") for r in range(size)] if rank == dst else None
        out = torch.zeros(4, device="cuda")
        dist.scatter(out, pieces, src=dst)
        assert out.cpu().tolist() == (everyone[rank] * (dst + 1)).tolist()
    # Rank r sends rank s a tensor of r + s + 1 elements.
    received = [torch.zeros(rank + s + 1, device="cuda") for s in range(size)]
    dist.all_to_all(received, [torch.full((rank + s + 1,), 10.0 * rank + s, device="cuda") for s in range(size)])
    assert [r.cpu().tolist() for r in received] == [[10.0 * s + rank] * (rank + s + 1) for s in range(size)]
    assert all(call["stream"] == dist._default_group.stream.ptr for call in fake_nccl.NcclCommunicator.calls
               if "stream" in call)


def nccl_ddp_equals_one_process(rank: int, size: int) -> None:
    generator = np.random.default_rng(3)
    x = torch.from_numpy(generator.standard_normal((8, 4)).astype(np.float32))
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    torch.manual_seed(rank)  # rank 1 starts from other weights
    local = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).cuda()
    model = DistributedDataParallel(local, bucket_cap_mb=0.0001)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    share = x[rank * 4:(rank + 1) * 4].cuda()
    for _ in range(3):
        optimizer.zero_grad()
        model(share).pow(2).mean().backward()
        optimizer.step()
        reference_optimizer.zero_grad()
        reference(x).pow(2).mean().backward()
        reference_optimizer.step()
    for p, q in zip(local.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.detach().cpu().numpy(), q.detach().numpy(), rtol=0, atol=1e-6)


def run_example(arguments: list) -> None:
    """Runs examples/train_digits_ddp.py with these arguments on the doubles, two fake GPUs."""
    import runpy
    install_doubles()
    fake_cupy.reset(2)
    example = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples", "train_digits_ddp.py")
    sys.argv = [example, *arguments]
    runpy.run_path(example, run_name="__main__")


def main() -> None:
    if sys.argv[1:2] == ["example"]:
        run_example(sys.argv[2:])
        return
    install_doubles()
    dist.init_process_group("nccl")
    rank, size = dist.get_rank(), dist.get_world_size()
    for check in (nccl_collectives, nccl_ddp_equals_one_process):
        try:
            check(rank, size)
        except Exception:  # noqa: BLE001  (reported; the test reads it)
            print(f"rank {rank} FAIL {check.__name__}: "
                  + traceback.format_exc().strip().replace("\n", " | "), flush=True)
        else:
            print(f"rank {rank} PASS {check.__name__}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
