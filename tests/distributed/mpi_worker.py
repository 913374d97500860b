"""Checks run inside ``mpiexec -n N python tests/distributed/mpi_worker.py GROUP``, started by the tests.

Each check prints ``PASS name`` or ``FAIL name: reason`` with its rank; a check that fails on one rank does
not stop the others (every rank still runs every collective, so no rank is left waiting). The test on the
pytest side reads the lines back.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import gradcore as torch  # noqa: E402
import gradcore.distributed as dist  # noqa: E402
from gradcore import nn  # noqa: E402
from gradcore.nn.parallel import DistributedDataParallel  # noqa: E402

CHECKS: dict = {}


def check(group: str):
    def register(function):
        CHECKS.setdefault(group, []).append(function)
        return function
    return register


def rank_values(rank: int, shape, dtype=np.float64) -> np.ndarray:
    """What rank ``rank`` contributes: different on every rank, exact in float32 and float64 sums."""
    return (np.arange(int(np.prod(shape))).reshape(shape) % 7 + 3 * rank + 1).astype(dtype)


# -- collectives against numpy ------------------------------------------------------------------------------
@check("collectives")
def all_reduce_every_op(rank, size):
    shape = (3, 4)
    everyone = np.stack([rank_values(r, shape) for r in range(size)])
    expected = {dist.ReduceOp.SUM: everyone.sum(0), dist.ReduceOp.AVG: everyone.mean(0),
                dist.ReduceOp.MAX: everyone.max(0), dist.ReduceOp.MIN: everyone.min(0),
                dist.ReduceOp.PRODUCT: everyone.prod(0)}
    for op, want in expected.items():
        for dtype in (np.float32, np.float64):
            t = torch.from_numpy(rank_values(rank, shape, dtype))
            assert dist.all_reduce(t, op=op) is None
            assert t.dtype == torch.from_numpy(np.zeros(1, dtype)).dtype
            np.testing.assert_allclose(t.numpy(), want, rtol=1e-6, err_msg=f"{op} {dtype}")
    ints = torch.from_numpy(rank_values(rank, (5,), np.int64))
    dist.all_reduce(ints)
    np.testing.assert_array_equal(ints.numpy(), sum(rank_values(r, (5,), np.int64) for r in range(size)))


@check("collectives")
def all_reduce_async_work(rank, size):
    t = torch.from_numpy(rank_values(rank, (1000,)))
    work = dist.all_reduce(t, op=dist.ReduceOp.AVG, async_op=True)
    assert isinstance(work, dist.Work)
    assert work.wait() is True and work.is_completed()
    np.testing.assert_allclose(t.numpy(), np.mean([rank_values(r, (1000,)) for r in range(size)], 0))


@check("collectives")
def broadcast_from_each_rank(rank, size):
    for src in range(size):
        t = torch.from_numpy(rank_values(rank, (2, 5), np.float32))
        dist.broadcast(t, src=src)
        np.testing.assert_array_equal(t.numpy(), rank_values(src, (2, 5), np.float32))
        work = dist.broadcast(t, src, async_op=True)
        work.wait()


@check("collectives")
def all_gather_rows(rank, size):
    outputs = [torch.zeros(3, 2, dtype=torch.float64) for _ in range(size)]
    dist.all_gather(outputs, torch.from_numpy(rank_values(rank, (3, 2))))
    for r, out in enumerate(outputs):
        np.testing.assert_array_equal(out.numpy(), rank_values(r, (3, 2)))


@check("collectives")
def reduce_scatter_chunks(rank, size):
    inputs = [torch.from_numpy(rank_values(rank, (4,)) * (i + 1)) for i in range(size)]
    output = torch.zeros(4, dtype=torch.float64)
    dist.reduce_scatter(output, inputs, op=dist.ReduceOp.SUM)
    np.testing.assert_allclose(output.numpy(), sum(rank_values(r, (4,)) * (rank + 1) for r in range(size)))
    dist.reduce_scatter(output, inputs, op=dist.ReduceOp.MAX)
    np.testing.assert_allclose(output.numpy(), np.max([rank_values(r, (4,)) * (rank + 1) for r in range(size)], 0))


@check("collectives")
def reduce_to_each_rank(rank, size):
    everyone = np.stack([rank_values(r, (3, 2)) for r in range(size)])
    for dst in range(size):
        for op, want in ((dist.ReduceOp.SUM, everyone.sum(0)), (dist.ReduceOp.MAX, everyone.max(0)),
                         (dist.ReduceOp.AVG, everyone.mean(0))):
            t = torch.from_numpy(rank_values(rank, (3, 2)))
            assert dist.reduce(t, dst=dst, op=op) is None
            # Only dst receives the result; the others' tensors stay as they were.
            np.testing.assert_allclose(t.numpy(), want if rank == dst else rank_values(rank, (3, 2)), rtol=1e-12)
    t = torch.from_numpy(rank_values(rank, (4,), np.float32))
    dist.reduce(t, group_dst=size - 1, async_op=True).wait()
    if rank == size - 1:
        np.testing.assert_array_equal(t.numpy(), sum(rank_values(r, (4,), np.float32) for r in range(size)))
    try:
        dist.reduce(t)
    except ValueError as error:
        assert "Must specify global_rank or group_rank" in str(error)
    else:
        raise AssertionError("reduce without dst was accepted")


@check("collectives")
def gather_and_scatter(rank, size):
    for root in range(size):
        gathered = [torch.zeros(2, 3, dtype=torch.float64) for _ in range(size)] if rank == root else None
        dist.gather(torch.from_numpy(rank_values(rank, (2, 3))), gathered, dst=root)
        if rank == root:
            for r, t in enumerate(gathered):
                np.testing.assert_array_equal(t.numpy(), rank_values(r, (2, 3)))
        pieces = [torch.from_numpy(rank_values(root, (5,)) * (r + 1)) for r in range(size)] if rank == root else None
        out = torch.zeros(5, dtype=torch.float64)
        dist.scatter(out, pieces, src=root)
        np.testing.assert_array_equal(out.numpy(), rank_values(root, (5,)) * (rank + 1))
    # dst and src default to rank 0; the lists are for the root alone, as PyTorch checks.
    expected = {
        "gather": ("Argument ``gather_list`` must be specified on destination rank." if rank == 0 else
                   "Argument ``gather_list`` must NOT be specified on non-destination ranks."),
        "scatter": ("Argument ``scatter_list`` must be specified on source rank." if rank == 0 else
                    "Argument ``scatter_list`` must NOT be specified on non-source ranks."),
    }
    one = torch.zeros(2)
    wrong = None if rank == 0 else [torch.zeros(2) for _ in range(size)]
    for name, call in (("gather", lambda: dist.gather(one, wrong)), ("scatter", lambda: dist.scatter(one, wrong))):
        try:
            call()
        except ValueError as error:
            assert str(error) == expected[name], str(error)
        else:
            raise AssertionError(f"{name} accepted a wrong list")
    if rank == 0:  # refused before any transfer: the other ranks do not take part
        try:
            dist.gather(one, [torch.zeros(2, dtype=torch.float64)] * size)
        except ValueError as error:
            assert "Invalid usage of tensors with different dtypes" in str(error)
        else:
            raise AssertionError("gather accepted mixed dtypes")
    dist.barrier()


@check("collectives")
def all_to_all_uneven(rank, size):
    # Rank r sends rank s a tensor of s + r + 1 elements: sizes differ in both directions.
    inputs = [torch.from_numpy(np.full(s + rank + 1, 10.0 * rank + s)) for s in range(size)]
    outputs = [torch.zeros(rank + s + 1, dtype=torch.float64) for s in range(size)]
    assert dist.all_to_all(outputs, inputs) is None
    for s, out in enumerate(outputs):
        np.testing.assert_array_equal(out.numpy(), np.full(rank + s + 1, 10.0 * s + rank))
    # all_to_all_single: equal splits of the rows, then the uneven form.
    x = torch.from_numpy(rank_values(rank, (2 * size, 3)))
    y = torch.zeros(2 * size, 3, dtype=torch.float64)
    dist.all_to_all_single(y, x, async_op=True).wait()
    want = np.concatenate([rank_values(s, (2 * size, 3))[2 * rank:2 * rank + 2] for s in range(size)])
    np.testing.assert_array_equal(y.numpy(), want)
    send_sizes = [s + 1 for s in range(size)]  # rank r sends s + 1 rows to rank s
    x = torch.from_numpy(np.arange(sum(send_sizes), dtype=np.float64) + 100 * rank)
    y = torch.zeros(size * (rank + 1), dtype=torch.float64)
    dist.all_to_all_single(y, x, output_split_sizes=[rank + 1] * size, input_split_sizes=send_sizes)
    offsets = np.cumsum([0] + send_sizes)
    want = np.concatenate([np.arange(offsets[rank], offsets[rank + 1]) + 100.0 * s for s in range(size)])
    np.testing.assert_array_equal(y.numpy(), want)


@check("collectives")
def send_recv_ring(rank, size):
    right, left = (rank + 1) % size, (rank - 1) % size
    received = torch.zeros(6, dtype=torch.float32)
    work = dist.irecv(received, src=left, tag=3)
    dist.send(torch.from_numpy(rank_values(rank, (6,), np.float32)), dst=right, tag=3)
    work.wait()
    np.testing.assert_array_equal(received.numpy(), rank_values(left, (6,), np.float32))
    # recv without src names the sender
    if rank == 0:
        got = torch.zeros(2)
        senders = sorted(dist.recv(got, tag=9) for _ in range(size - 1))
        assert senders == list(range(1, size)), senders
    else:
        dist.send(torch.ones(2), dst=0, tag=9)


@check("collectives")
def errors_named_as_pytorch(rank, size):
    try:
        dist.init_process_group("mpi")
    except ValueError as error:
        assert "twice" in str(error)
    else:
        raise AssertionError("a second init_process_group did not raise")
    try:
        dist.all_reduce(torch.ones(4, 4).t())
    except ValueError as error:
        assert str(error) == "Tensors must be contiguous"
    else:
        raise AssertionError("a non-contiguous tensor was accepted")
    try:
        dist.send(torch.ones(1), dst=rank)
    except ValueError as error:
        assert "should not be the same as the rank of the current process" in str(error)
    else:
        raise AssertionError("sending to oneself was accepted")
    assert dist.get_rank() == rank and dist.get_world_size() == size and dist.get_backend() == "mpi"
    dist.barrier()


# -- DistributedDataParallel ---------------------------------------------------------------------------------
def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def data(steps: int, batch: int):
    generator = np.random.default_rng(7)
    xs = generator.standard_normal((steps, batch, 5))
    ys = generator.integers(0, 3, (steps, batch))
    return [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in zip(xs, ys)]


def train(model, optimizer, batches, rank_slice=None):
    losses = []
    loss_fn = nn.CrossEntropyLoss()
    for x, y in batches:
        if rank_slice is not None:
            x, y = x[rank_slice], y[rank_slice]
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def compare_with_one_process(rank, size, make_optimizer, bucket_cap_mb):
    batch = 4 * size
    batches = data(5, batch)
    reference = make_model(0)
    reference_losses = train(reference, make_optimizer(reference.parameters()), batches)
    # Rank 1 starts from other weights: the broadcast at wrap time must replace them with rank 0's.
    local = make_model(0 if rank == 0 else 100 + rank)
    model = DistributedDataParallel(local, bucket_cap_mb=bucket_cap_mb)
    share = slice(rank * 4, (rank + 1) * 4)
    losses = train(model, make_optimizer(model.parameters()), batches, share)
    # The loss of the whole batch is the mean of the ranks' losses (equal shares of a mean loss).
    every_loss = torch.tensor(losses, dtype=torch.float64)
    dist.all_reduce(every_loss, op=dist.ReduceOp.AVG)
    np.testing.assert_allclose(every_loss.numpy(), reference_losses, rtol=0, atol=1e-6)
    for (name, p), q in zip(model.module.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=0, atol=1e-6, err_msg=name)
    assert len(model._buckets) > 1 or bucket_cap_mb is None


@check("ddp")
def ddp_equals_one_process_sgd_momentum(rank, size):
    compare_with_one_process(rank, size, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), None)
    compare_with_one_process(rank, size, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), 0.0005)


@check("ddp")
def ddp_equals_one_process_adam(rank, size):
    compare_with_one_process(rank, size, lambda p: torch.optim.Adam(p, lr=0.01), 0.0005)


@check("ddp")
def ddp_gradient_as_bucket_view(rank, size):
    # .grad becomes a view of its bucket: the same training as one process, and no copy back.
    for set_to_none in (True, False):
        batches = data(4, 4 * size)
        reference = make_model(0)
        reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
        model = DistributedDataParallel(make_model(0 if rank == 0 else 100 + rank), bucket_cap_mb=0.0005,
                                        gradient_as_bucket_view=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        share = slice(rank * 4, (rank + 1) * 4)
        for x, y in batches:
            reference_optimizer.zero_grad(set_to_none=set_to_none)
            loss_fn(reference(x), y).backward()
            reference_optimizer.step()
            optimizer.zero_grad(set_to_none=set_to_none)
            loss_fn(model(x[share]), y[share]).backward()
            for bucket in model._buckets:
                flat = bucket.flat.numpy()
                for p in bucket.params:
                    assert np.shares_memory(p.grad.numpy(), flat)
            optimizer.step()
        for (name, p), q in zip(model.module.named_parameters(), reference.parameters()):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=0, atol=1e-6,
                                       err_msg=f"{name} set_to_none={set_to_none}")
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0, atol=1e-9, err_msg=name)
    # Gradients that exist when the model is wrapped move into the buckets.
    module = make_model(0)
    module(torch.ones(2, 5, dtype=torch.float64)).sum().backward()
    before = [p.grad.numpy().copy() for p in module.parameters()]
    model = DistributedDataParallel(module, gradient_as_bucket_view=True)
    for p, value in zip(module.parameters(), before):
        np.testing.assert_array_equal(p.grad.numpy(), value)
        assert np.shares_memory(p.grad.numpy(), model._buckets[0].flat.numpy())


@check("ddp")
def ddp_no_sync_accumulation(rank, size):
    # Two micro-batches under no_sync, a third synchronised: .grad is the average over ranks of each rank's
    # sum of three gradients, as one process computes it on the three whole batches without DDP.
    batches = data(3, 4 * size)
    reference = make_model(3)
    loss_fn = nn.CrossEntropyLoss()
    for x, y in batches:
        loss_fn(reference(x), y).backward()
    model = DistributedDataParallel(make_model(3 + rank), bucket_cap_mb=0.0005)
    share = slice(rank * 4, (rank + 1) * 4)
    with model.no_sync():
        for x, y in batches[:2]:
            loss_fn(model(x[share]), y[share]).backward()
    # Under no_sync nothing was exchanged: each rank holds the gradient of its own share only.
    local = [p.grad.numpy().copy() for p in model.parameters()]
    everyone = [torch.from_numpy(g.copy()) for g in local]
    for g in everyone:
        dist.all_reduce(g, op=dist.ReduceOp.AVG)
    assert any(not np.allclose(g, s.numpy()) for g, s in zip(local, everyone))
    x, y = batches[2]
    loss_fn(model(x[share]), y[share]).backward()
    # Each rank's loss is the mean over its share; the average over ranks of those means is the mean over the
    # whole batch, the reference's loss, so the averaged accumulated gradients are the reference's.
    for (name, p), q in zip(model.module.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0, atol=1e-9, err_msg=name)


@check("ddp")
def ddp_find_unused_parameters(rank, size):
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = nn.Linear(3, 4)
            self.head_a = nn.Linear(4, 1)
            self.head_b = nn.Linear(4, 1)
            self.never = nn.Linear(4, 1)

        def forward(self, x, use_b):
            h = self.trunk(x)
            return (self.head_b if use_b else self.head_a)(h)

    torch.manual_seed(1)
    module = TwoHeads().double()
    model = DistributedDataParallel(module, find_unused_parameters=True)
    x = torch.from_numpy(rank_values(rank, (2, 3)) / 10)
    # Rank 0 uses head a, the others head b: each head's gradient is its users' sum divided by the world size.
    model(x, use_b=rank != 0).sum().backward()
    assert module.never.weight.grad is None  # unused on every rank: left as it was
    grads = {}
    for r in range(size):
        torch.manual_seed(1)
        alone = TwoHeads().double()
        alone(torch.from_numpy(rank_values(r, (2, 3)) / 10), use_b=r != 0).sum().backward()
        for name, p in alone.named_parameters():
            if p.grad is not None:
                grads[name] = grads.get(name, 0) + p.grad.numpy() / size
    for name, p in module.named_parameters():
        if name.startswith("never"):
            continue
        np.testing.assert_allclose(p.grad.numpy(), grads[name], rtol=0, atol=1e-12, err_msg=name)


@check("ddp")
def ddp_buckets_overlap_backward(rank, size):
    model = DistributedDataParallel(make_model(0), bucket_cap_mb=0.0005)
    events = []
    group = dist._default_group
    original = group.all_reduce

    def recording_all_reduce(tensor, op):
        events.append(("all_reduce", tensor.numel()))
        return original(tensor, op)
    group.all_reduce = recording_all_reduce
    params = list(model.module.parameters())
    names = {id(p): name for name, p in model.module.named_parameters()}
    for p in params:
        p.register_post_accumulate_grad_hook(lambda p: events.append(("ready", names[id(p)])))
    try:
        loss = model(torch.from_numpy(rank_values(rank, (4, 5)))).sum()
        loss.backward()
    finally:
        del group.all_reduce
    # Buckets hold the parameters in reverse order of registration: the last layer's come first.
    first_bucket = model._buckets[0].params
    assert first_bucket[0] is params[-1], [names[id(p)] for p in first_bucket]
    order = [names[id(p)] for bucket in model._buckets for p in bucket.params]
    assert order == [names[id(p)] for p in reversed(params)], order
    # The first bucket's all-reduce starts while backward still has gradients to produce.
    first_reduce = events.index(("all_reduce", model._buckets[0].flat.numel()))
    last_ready = max(i for i, e in enumerate(events) if e[0] == "ready")
    assert first_reduce < last_ready, events
    assert sum(1 for e in events if e[0] == "all_reduce") == len(model._buckets)


@check("ddp")
def ddp_rejects_another_model(rank, size):
    width = 4 if rank == 0 else 5
    try:
        DistributedDataParallel(nn.Linear(3, width))
    except RuntimeError as error:
        assert "DDP expects same model across all ranks" in str(error) and "[4, 3]" in str(error) \
            and "[5, 3]" in str(error), str(error)
    else:
        raise AssertionError("models of different shapes were accepted")


@check("ddp")
def ddp_broadcasts_parameters_and_buffers(rank, size):
    class WithBuffer(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 2)
            self.register_buffer("running", torch.full((3,), float(rank)))

        def forward(self, x):
            return self.linear(x) + self.running[:2]

    torch.manual_seed(rank)
    module = WithBuffer()
    model = DistributedDataParallel(module)
    assert module.running.tolist() == [0.0] * 3  # rank 0's, at wrap time
    weights = module.linear.weight.detach().clone()
    dist.broadcast(weights, src=0)
    np.testing.assert_array_equal(module.linear.weight.detach().numpy(), weights.numpy())
    module.running.fill_(float(rank + 5))
    model(torch.ones(1, 2)).sum().backward()  # each forward broadcasts the buffers again (broadcast_buffers)
    assert module.running.tolist() == [5.0] * 3


# -- DistributedDataParallel under gradcore.compile ---------------------------------------------------------
def counting_all_reduces(calls: list):
    """Counts the default group's all-reduces (and broadcasts) from now on; returns a function that stops it."""
    group = dist._default_group
    all_reduce, broadcast = group.all_reduce, group.broadcast

    def counted_all_reduce(tensor, op):
        calls.append("all_reduce")
        return all_reduce(tensor, op)

    def counted_broadcast(tensor, src):
        calls.append("broadcast")
        return broadcast(tensor, src)
    group.all_reduce, group.broadcast = counted_all_reduce, counted_broadcast

    def stop():
        del group.all_reduce, group.broadcast
    return stop


def compiled_training(rank, size, make_optimizer, steps: int, compiled, module_only: bool = False,
                      **ddp_options):
    """Trains a DDP model (rank 1 from other weights) on each rank's share of ``steps`` batches, with the whole
    step (forward, loss, backward, optimizer.step) in one compiled function, or with only the DDP module
    compiled (``module_only``), or eagerly. Returns the module, the ranks' mean losses, and the compiled
    callable (None when eager)."""
    batches = data(steps, 4 * size)
    model = DistributedDataParallel(make_model(0 if rank == 0 else 100 + rank), bucket_cap_mb=0.0005,
                                    **ddp_options)
    optimizer = make_optimizer(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    forward = torch.compile(model) if module_only else model

    def step(x, y):
        optimizer.zero_grad()
        loss = loss_fn(forward(x), y)
        loss.backward()
        optimizer.step()
        return loss

    run = torch.compile(step) if compiled and not module_only else step
    share = slice(rank * 4, (rank + 1) * 4)
    losses = []
    calls: list = []
    stop = counting_all_reduces(calls)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a call that fell back to eager would warn
            for k, (x, y) in enumerate(batches):
                before = len(calls)
                losses.append(run(x[share], y[share]).item())
                # Every call, replays included, all-reduces each bucket once.
                assert calls[before:] == ["all_reduce"] * len(model._buckets), (k, calls[before:])
                assert not model._armed  # the reduction ended as after an eager step
    finally:
        stop()
    every_loss = torch.tensor(losses, dtype=torch.float64)
    dist.all_reduce(every_loss, op=dist.ReduceOp.AVG)
    if module_only:
        return model, every_loss.numpy(), forward._compiled_call
    return model, every_loss.numpy(), run if compiled else None


def compiled_equals_one_process_and_eager(rank, size, make_optimizer, **ddp_options):
    steps = 6
    reference = make_model(0)
    reference_losses = train(reference, make_optimizer(reference.parameters()), data(steps, 4 * size))
    model, losses, compiled = compiled_training(rank, size, make_optimizer, steps, compiled=True, **ddp_options)
    eager_model, eager_losses, _ = compiled_training(rank, size, make_optimizer, steps, compiled=False,
                                                     **ddp_options)
    # The first call captures, the second captures again and is compared with the first, the rest replay.
    assert compiled.stats == {"captures": 3, "replays": steps - 3, "eager": 0}, compiled.stats
    listing = compiled.listing()
    assert listing.count("all_reduce_start") == listing.count("all_reduce_wait") == 2 * len(model._buckets)
    assert "[host]" in listing
    np.testing.assert_allclose(losses, reference_losses, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(losses, eager_losses)
    for (name, p), q, e in zip(model.module.named_parameters(), reference.parameters(),
                               eager_model.module.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=0, atol=1e-6, err_msg=name)
        np.testing.assert_array_equal(p.detach().numpy(), e.detach().numpy(), err_msg=name)


@check("compile")
def compiled_ddp_equals_one_process_sgd_momentum(rank, size):
    compiled_equals_one_process_and_eager(rank, size, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))


@check("compile")
def compiled_ddp_equals_one_process_adam(rank, size):
    compiled_equals_one_process_and_eager(rank, size, lambda p: torch.optim.Adam(p, lr=0.01))


@check("compile")
def compiled_ddp_gradient_as_bucket_view(rank, size):
    compiled_equals_one_process_and_eager(rank, size, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                                          gradient_as_bucket_view=True)


@check("compile")
def compiled_ddp_module_with_backward_outside(rank, size):
    # gradcore.compile(ddp_model): the forward replays, backward() runs outside the compiled call and its hooks
    # all-reduce eagerly, as the replayed forward prepared the reduction.
    steps = 6
    make_optimizer = lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)  # noqa: E731
    reference = make_model(0)
    reference_losses = train(reference, make_optimizer(reference.parameters()), data(steps, 4 * size))
    model, losses, compiled = compiled_training(rank, size, make_optimizer, steps, True, module_only=True)
    assert compiled.stats == {"captures": 2, "replays": steps - 2, "eager": 0}, compiled.stats
    np.testing.assert_allclose(losses, reference_losses, rtol=0, atol=1e-6)
    for (name, p), q in zip(model.module.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=0, atol=1e-6, err_msg=name)


@check("compile")
def compiled_ddp_no_sync_accumulation(rank, size):
    # Rounds of two micro-batches under no_sync and a third synchronised, each micro-batch one compiled call;
    # the no_sync calls are other variants (DDP's sync state is part of the guards): they must not communicate.
    # Later rounds enter no_sync inside a compiled call. The gradients are zeroed in place between rounds (the
    # same .grad tensors, so that the calls replay).
    rounds = 8
    batches = data(3 * rounds, 4 * size)
    reference = make_model(3)
    model = DistributedDataParallel(make_model(3 + rank), bucket_cap_mb=0.0005)
    loss_fn = nn.CrossEntropyLoss()

    @torch.compile
    def micro(x, y):
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    @torch.compile
    def micro_without_sync(x, y):  # no_sync entered inside the compiled call
        with model.no_sync():
            loss_fn(model(x), y).backward()

    share = slice(rank * 4, (rank + 1) * 4)
    calls: list = []
    stop = counting_all_reduces(calls)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for r in range(rounds):
                round_batches = batches[3 * r:3 * r + 3]
                for p in list(model.parameters()) + list(reference.parameters()):
                    if p.grad is not None:
                        p.grad.zero_()
                for x, y in round_batches:
                    loss_fn(reference(x), y).backward()
                before = len(calls)
                if r < rounds // 2:
                    with model.no_sync():
                        for x, y in round_batches[:2]:
                            micro(x[share], y[share])
                else:
                    for x, y in round_batches[:2]:
                        micro_without_sync(x[share], y[share])
                assert calls[before:] == [], calls[before:]
                x, y = round_batches[2]
                micro(x[share], y[share])
                assert calls[before:] == ["all_reduce"] * len(model._buckets), calls[before:]
                for (name, p), q in zip(model.module.named_parameters(), reference.parameters()):
                    np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0, atol=1e-9,
                                               err_msg=f"round {r} {name}")
    finally:
        stop()
    # micro: three variants (no_sync with .grad None, no_sync with .grad, sync), the last two verified once.
    assert micro.stats == {"captures": 5, "replays": 11, "eager": 0}, micro.stats
    assert micro_without_sync.stats == {"captures": 2, "replays": 6, "eager": 0}, micro_without_sync.stats


@check("compile")
def compiled_ddp_broadcasts_buffers(rank, size):
    class WithBuffer(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 2)
            self.register_buffer("offset", torch.zeros(2))

        def forward(self, x):
            return self.linear(x) + self.offset

    torch.manual_seed(0)
    module = WithBuffer().double()
    model = DistributedDataParallel(module)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    @torch.compile
    def step(x):
        optimizer.zero_grad()
        loss = model(x).pow(2).sum()
        loss.backward()
        optimizer.step()
        return loss

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k in range(5):
            # Every call, replays included, broadcasts rank 0's buffers before the forward.
            module.offset.fill_(float(k if rank == 0 else 50 + rank))
            loss = step(torch.ones(1, 2, dtype=torch.float64) * (k + 1))
            assert module.offset.tolist() == [float(k)] * 2, (k, module.offset.tolist())
            losses = torch.tensor([loss.item()], dtype=torch.float64)
            dist.all_reduce(losses, op=dist.ReduceOp.MAX)
            assert losses.item() == loss.item()  # the same loss on every rank
    assert step.stats["replays"] == 2 and step.stats["eager"] == 0, step.stats


@check("compile")
def compiled_ddp_find_unused_parameters_runs_eagerly(rank, size):
    torch.manual_seed(0)
    model = DistributedDataParallel(nn.Linear(3, 2).double(), find_unused_parameters=True)

    @torch.compile
    def step(x):
        model(x).sum().backward()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            step(torch.ones(1, 3, dtype=torch.float64))
    assert any("find_unused_parameters=True" in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert step.stats["replays"] == 0 and step.stats["eager"] >= 1, step.stats


# -- failures ---------------------------------------------------------------------------------------------
@check("mismatch")
def mismatched_shapes_named(rank, size):
    shape = (3,) if rank == 0 else (4,)
    try:
        dist.all_reduce(torch.ones(shape))
    except RuntimeError as error:
        text = str(error)
        assert "Detected mismatch between collectives on ranks" in text, text
        assert "TensorShape=[[3]]" in text and "TensorShape=[[4]]" in text, text
    else:
        raise AssertionError("mismatched shapes were reduced")
    dtype = torch.float32 if rank == 0 else torch.float64
    try:
        dist.broadcast(torch.ones(2, dtype=dtype), src=0)
    except RuntimeError as error:
        assert "gradcore.float32" in str(error) and "gradcore.float64" in str(error), str(error)
    else:
        raise AssertionError("mismatched dtypes were broadcast")
    t = torch.ones(2)
    dist.all_reduce(t)  # the ranks agree again: the collective runs
    assert t.tolist() == [size, size]


def scenario_raise(rank, size):
    if rank == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.all_reduce(torch.ones(2))
    print(f"rank {rank} was not stopped", flush=True)


def scenario_exit(rank, size):
    if rank == 1:
        os._exit(3)
    dist.all_reduce(torch.ones(2))
    print(f"rank {rank} was not stopped", flush=True)


def scenario_stall(rank, size):
    if rank == 1:
        time.sleep(120)
    dist.all_reduce(torch.ones(2))
    print(f"rank {rank} was not stopped", flush=True)


SCENARIOS = {"raise": scenario_raise, "exit": scenario_exit, "stall": scenario_stall}


def main() -> None:
    group = sys.argv[1]
    timeout_s = float(os.environ.get("GRADCORE_TEST_TIMEOUT_S", "30"))
    import datetime
    dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=timeout_s))
    rank, size = dist.get_rank(), dist.get_world_size()
    if group in SCENARIOS:
        SCENARIOS[group](rank, size)
        return
    for function in CHECKS[group]:
        try:
            function(rank, size)
        except Exception:  # noqa: BLE001  (reported, and the next check runs)
            reason = traceback.format_exc().strip().replace("\n", " | ")
            print(f"rank {rank} FAIL {function.__name__}: {reason}", flush=True)
        else:
            print(f"rank {rank} PASS {function.__name__}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
