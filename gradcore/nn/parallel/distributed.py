"""``DistributedDataParallel``: one model replica per process, gradients averaged across processes in backward."""
from __future__ import annotations

import contextlib
import functools
import weakref
from typing import Any, Iterator

from ... import distributed as dist
from ..._capture import trace as _trace
from ...autograd import is_grad_enabled
from ...autograd.function import AccumulateGrad
from ...tensor import Tensor, make_tensor
from ..modules.module import Module

_MIB = 1024 * 1024
# As in PyTorch, the first bucket (the last layers, whose gradients come first) is small, so that the first
# all-reduce starts early in backward; the later ones take bucket_cap_mb.
_FIRST_BUCKET_BYTES = 1 * _MIB


class _Bucket:
    """Parameters whose gradients travel in one all-reduce: one flat array holding all their gradients."""

    def __init__(self, index: int, params: list, backend) -> None:
        self.index = index
        self.params = params
        self.offsets = []
        total = 0
        for p in params:
            self.offsets.append(total)
            total += p.numel()
        self.flat = make_tensor(backend.zeros((total,), params[0].dtype.numpy))
        self.pending = len(params)
        self.work: dist.Work | None = None

    def slot(self, position: int):
        """The part of the flat array that holds the gradient of ``self.params[position]``."""
        p = self.params[position]
        start = self.offsets[position]
        return self.flat._data[start:start + p.numel()].reshape(p._data.shape)


class DistributedDataParallel(Module):
    """Implements distributed data parallelism over ``gradcore.distributed`` (``torch.nn.parallel`` name and use).

    At wrap time rank 0's parameters and buffers are broadcast to every rank. The parameters' gradients are
    grouped into buckets (``bucket_cap_mb``, 25 MiB by default, in reverse order of registration, which is
    roughly the order backward produces them); when every gradient of a bucket has been accumulated, the bucket
    is all-reduced, averaged, without waiting, so that the transfer runs while backward goes on. The last
    gradient of backward waits for all buckets and writes the averages back into ``.grad`` (with
    ``gradient_as_bucket_view=True``, ``.grad`` is a view of its bucket instead, so that nothing is copied back
    and the gradients take no memory of their own, as in PyTorch). ``no_sync()`` skips
    the all-reduce (gradients accumulate locally); ``find_unused_parameters=True`` lets a forward leave some
    parameters out of the graph. One process drives one device, so ``device_ids``, ``output_device`` and
    ``dim`` have nothing to choose; they, ``check_reduction`` and ``static_graph`` are accepted for PyTorch's
    signature and change nothing.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, init_sync: bool = True, process_group=None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False) -> None:
        super().__init__()
        group = dist._group(process_group)
        params = []
        for p in module.parameters():
            if p.requires_grad and not any(p is q for q in params):
                params.append(p)
        if not params:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter "
                               "that requires a gradient.")
        self.module = module
        self.process_group = group
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.bucket_bytes_cap = int((25 if bucket_cap_mb is None else bucket_cap_mb) * _MIB)
        self._params = params
        self._verify_same_model(group, module)
        if init_sync and group.size > 1:
            self._broadcast_state(module)
        self._buckets = self._build_buckets(params, group)
        self._position = {id(p): (bucket, i) for bucket in self._buckets for i, p in enumerate(bucket.params)}
        if gradient_as_bucket_view:  # gradients that exist already move into their buckets
            for bucket in self._buckets:
                for position, p in enumerate(bucket.params):
                    if p._grad is not None:
                        view = bucket.slot(position)
                        view[...] = p._grad._data
                        p._grad = make_tensor(view)
        self._armed = False  # a forward with grad enabled and sync on prepared a reduction
        self._ready: set = set()
        self._sync_at_capture_start = None  # (weakref to a capture's recorder, require_backward_grad_sync then)
        self._hook_handles = [p.register_post_accumulate_grad_hook(self._gradient_ready) for p in params]

    # -- set-up ---------------------------------------------------------------------------------
    def _verify_same_model(self, group, module: Module) -> None:
        # The shapes and dtypes of the parameters, compared across ranks: a different model on one rank would
        # otherwise all-reduce unrelated memory.
        mine = [(name, list(p.shape), str(p.dtype)) for name, p in module.named_parameters() if p.requires_grad]
        if group.size == 1:
            return
        everyone = group.exchange_objects(mine, "DistributedDataParallel's check of the model across ranks")
        for rank, theirs in enumerate(everyone):
            if theirs == mine:
                continue
            if len(theirs) != len(mine):
                raise RuntimeError(f"DDP expects same model across all ranks, but Rank {group.rank} has {len(mine)} "
                                   f"params, while rank {rank} has inconsistent {len(theirs)} params.")
            for ours, other in zip(mine, theirs):
                if ours != other:
                    raise RuntimeError(
                        f"DDP expects same model across all ranks, but Rank {group.rank} has parameter {ours[0]} of "
                        f"shape {ours[1]} and dtype {ours[2]}, while rank {rank} has parameter {other[0]} of shape "
                        f"{other[1]} and dtype {other[2]}.")

    def _broadcast_state(self, module: Module) -> None:
        works = [self.process_group.broadcast(t, 0) for t in self._state_tensors(module)]
        for work in works:
            work.wait()

    @staticmethod
    def _state_tensors(module: Module, buffers_only: bool = False) -> list:
        tensors = [] if buffers_only else [p.detach() for p in module.parameters()]
        return tensors + [b for b in module.buffers() if b is not None]

    def _build_buckets(self, params: list, group) -> list:
        buckets = []
        current: list = []
        current_bytes = 0
        cap = min(_FIRST_BUCKET_BYTES, self.bucket_bytes_cap)
        for p in reversed(params):
            if current and (p.dtype != current[0].dtype or p.device != current[0].device):
                buckets.append(current)
                current, current_bytes = [], 0
            current.append(p)
            current_bytes += p.numel() * p.element_size()
            if current_bytes >= cap:
                buckets.append(current)
                current, current_bytes = [], 0
                cap = self.bucket_bytes_cap
        if current:
            buckets.append(current)
        return [_Bucket(i, members, members[0]._backend) for i, members in enumerate(buckets)]

    # -- forward and backward -------------------------------------------------------------------
    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if self._armed and self._ready:
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a new one. This error "
                "indicates that your module has parameters that were not used in producing loss. You can enable "
                "unused parameter detection by passing the keyword argument `find_unused_parameters=True` to "
                "`gradcore.nn.parallel.DistributedDataParallel`.")
        capturing = _capturing()
        if capturing is not None and self.find_unused_parameters:
            # Which parameters the other ranks left out is not something a replay could see change.
            capturing.unsupported = capturing.unsupported or (
                "DistributedDataParallel(find_unused_parameters=True) decides from the graph of each call")
        if self.broadcast_buffers and self.process_group.size > 1:
            buffers = self._state_tensors(self.module, buffers_only=True)
            if capturing is not None:
                for b in buffers:
                    _trace.host_call(functools.partial(_broadcast_from_rank_0, self.process_group), "broadcast",
                                     b._data)
            else:
                for work in [self.process_group.broadcast(b, 0) for b in buffers]:
                    work.wait()
        output = self.module(*inputs, **kwargs)
        armed = is_grad_enabled() and self.require_backward_grad_sync
        if capturing is not None:
            # A replay prepares the reduction too: a backward outside the compiled call (gradcore.compile of
            # the module alone) then all-reduces from the hooks, as after an eager forward.
            _trace.host_call(functools.partial(self._prepare_reduction, armed), "ddp_prepare_reduction")
        else:
            self._prepare_reduction(armed)
        if self._armed and self.find_unused_parameters:
            used = _leaves_reached(output)
            self._unused = [p for p in self._params if id(p) not in used]
            for p in self._unused:
                self._mark_ready(p, unused=True)
        else:
            self._unused = []
        return output

    def _prepare_reduction(self, armed: bool) -> None:
        self._armed = armed
        self._ready = set()
        for bucket in self._buckets:
            bucket.pending = len(bucket.params)
            bucket.work = None

    def _reduction_done(self) -> None:
        self._armed = False
        self._ready = set()

    def _gradient_ready(self, param: Tensor) -> None:
        if self._armed:
            self._mark_ready(param, unused=False)

    # Under gradcore.compile the hook's array work is recorded, and its all-reduces become host steps of the
    # program (_RecordedAllReduce): a replay needs none of its Python.
    _gradient_ready.capture_safe = True

    def _mark_ready(self, param: Tensor, unused: bool) -> None:
        if id(param) in self._ready:
            return
        self._ready.add(id(param))
        bucket, position = self._position[id(param)]
        slot = bucket.slot(position)
        if unused or param._grad is None:
            slot[...] = 0
        elif not (self.gradient_as_bucket_view and _same_memory(param._grad._data, slot)):
            slot[...] = param._grad._data
            if self.gradient_as_bucket_view:  # from now on .grad is the bucket's view (accumulated in place)
                param._grad = make_tensor(slot)
        bucket.pending -= 1
        if bucket.pending == 0:
            # Averaging is a division before a sum: one pass over the flat array, and the result needs none.
            flat = bucket.flat._data
            flat *= 1.0 / self.process_group.size
            if _capturing() is not None:
                bucket.work = _RecordedAllReduce(self.process_group, flat)
            else:
                bucket.work = self.process_group.all_reduce(bucket.flat, dist.ReduceOp.SUM)
        # Each ready gradient also lets MPI move the transfers already started along.
        for other in self._buckets:
            if other.work is not None:
                other.work.is_completed()
        if len(self._ready) == len(self._params):
            self._finish_reduction()

    def _finish_reduction(self) -> None:
        if _capturing() is not None:  # a replay of a whole training step runs no hook: this step disarms
            _trace.host_call(self._reduction_done, "ddp_reduction_done")
        else:
            self._reduction_done()
        unused_everywhere = set()
        if self.find_unused_parameters:  # every rank takes part, whether or not it left parameters out itself
            unused_everywhere = self._unused_on_every_rank()
        for bucket in self._buckets:
            bucket.work.wait()
            for position, p in enumerate(bucket.params):
                if id(p) in unused_everywhere:
                    continue
                averaged = bucket.slot(position)
                if self.gradient_as_bucket_view:
                    if p._grad is None or not _same_memory(p._grad._data, averaged):
                        p._grad = make_tensor(averaged)
                    else:
                        p._grad._version_counter.value += 1
                elif p._grad is None:
                    p._grad = make_tensor(averaged.copy())
                else:
                    p._grad._data[...] = averaged
                    p._grad._version_counter.value += 1

    def _unused_on_every_rank(self) -> set:
        # A parameter unused here may have been used on another rank: its gradient is then the average of the
        # others' (and this rank's zeros). Only one unused everywhere keeps its .grad as it was, as in PyTorch.
        unused = {id(p) for p in self._unused}
        backend = self._params[0]._backend
        used = make_tensor(backend.asarray([0.0 if id(p) in unused else 1.0 for p in self._params], "float64"))
        self.process_group.all_reduce(used, dist.ReduceOp.MAX).wait()
        return {id(p) for p, flag in zip(self._params, used.tolist()) if flag == 0.0}

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """A context manager in which backward accumulates gradients locally, without all-reducing them."""
        previous = self.require_backward_grad_sync
        recorder = _capturing()
        if recorder is not None and (self._sync_at_capture_start is None
                                     or self._sync_at_capture_start[0]() is not recorder):
            self._sync_at_capture_start = (weakref.ref(recorder), previous)
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def _capture_guard(self) -> bool:
        """What a compiled call that ran this module depends on, checked before each replay: whether backward
        all-reduces (outside ``no_sync()``), as it was when the call began, even if the call entered no_sync()."""
        start = self._sync_at_capture_start
        recorder = _capturing()
        if start is not None and recorder is not None and start[0]() is recorder:
            return start[1]
        return self.require_backward_grad_sync

    def extra_repr(self) -> str:
        return f"bucket_cap_mb={self.bucket_bytes_cap / _MIB:g}, buckets={len(self._buckets)}"


def _same_memory(a, b) -> bool:
    """Whether two arrays (numpy or CuPy) are the same elements of memory: the same address and shape."""
    return a.shape == b.shape and a.strides == b.strides and _address(a) == _address(b)


def _address(array) -> int:
    interface = getattr(array, "__cuda_array_interface__", None) or array.__array_interface__
    return interface["data"][0]


def _capturing():
    """The recorder of the ``gradcore.compile`` capture in progress, or None."""
    recorder = _trace.current_recorder()
    return None if recorder is None or recorder.paused else recorder


def _broadcast_from_rank_0(group, array) -> None:
    """A buffer's broadcast as a host step of a compiled call: on the program's array, waited for."""
    group.broadcast(make_tensor(array), 0).wait()


class _RecordedAllReduce:
    """A bucket's all-reduce while ``gradcore.compile`` captures: two host steps of the program, one that starts
    the all-reduce on the bucket's flat array where the eager call started it (when the bucket's last gradient
    was ready, so that the replay overlaps it with the rest of backward too) and one that waits for it where the
    eager call waited. The capture runs both, and each replay runs them again, on the same array."""

    def __init__(self, group, flat) -> None:
        self.group = group
        self.flat = flat
        self.work = None
        _trace.host_call(self._start, "all_reduce_start", flat)

    def _start(self, array) -> None:
        self.work = self.group.all_reduce(make_tensor(array), dist.ReduceOp.SUM)

    def _wait(self, array) -> None:
        work, self.work = self.work, None
        work.wait()

    def is_completed(self) -> bool:
        return self.work is None or self.work.is_completed()

    def wait(self) -> bool:
        _trace.host_call(self._wait, "all_reduce_wait", self.flat)
        return True


def _leaves_reached(outputs: Any) -> set:
    """Returns the ids of the leaf tensors whose gradients backward from ``outputs`` would accumulate."""
    roots = []
    stack = [outputs]
    while stack:
        value = stack.pop()
        if isinstance(value, Tensor):
            if value.grad_fn is not None:
                roots.append(value.grad_fn)
            elif value.requires_grad:
                roots.append(value._grad_accumulator())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
    leaves, seen = set(), set()
    while roots:
        node = roots.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, AccumulateGrad):
            leaves.add(id(node.variable))
            continue
        roots.extend(next_node for next_node, _ in node._edges)
    return leaves
