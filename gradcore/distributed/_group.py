"""What the MPI and NCCL process groups share: checks on the tensors handed to a collective, ``ReduceOp``,
and the cross-rank handshake that names mismatched shapes and dtypes."""
from __future__ import annotations

import enum
import pickle

import numpy as np

from ..tensor import Tensor


class ReduceOp(enum.Enum):
    """The reduction an ``all_reduce`` or ``reduce_scatter`` applies across ranks (``torch.distributed.ReduceOp``)."""

    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4

    def __repr__(self) -> str:
        return f"<RedOpType.{self.name}: {self.value}>"


class ProcessGroup:
    """A set of ranks that run collectives together; the backends define the transfers.

    ``check_collectives`` turns on the handshake of ``TORCH_DISTRIBUTED_DEBUG=DETAIL``: before each collective
    the ranks exchange its name, shapes and dtypes (a few hundred bytes), and every rank raises the same error,
    naming both sides, when they differ, instead of hanging or reducing unrelated memory.
    """

    backend = ""
    device_type = ""

    def __init__(self, rank: int, size: int, timeout_s: float, check_collectives: bool) -> None:
        self.rank = rank
        self.size = size
        self.timeout_s = timeout_s
        self.check_collectives = check_collectives
        self._sequence_number = 0

    # -- what a backend provides -------------------------------------------------------------------
    def _all_gather_bytes(self, payload: np.ndarray, description: str) -> np.ndarray:
        """Returns the ``(size, len(payload))`` uint8 rows of every rank's equally long ``payload``."""
        raise NotImplementedError

    # -- shared checks -----------------------------------------------------------------------------
    def check_tensor(self, tensor, function: str, argument: str = "tensor"):
        """Returns ``tensor``'s array after checking that this backend can transfer it in place."""
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{function}(): argument '{argument}' must be Tensor, not {type(tensor).__name__}")
        if tensor.device.type != self.device_type:
            raise ValueError(f"{function}(): backend '{self.backend}' does not support {tensor.device.type} tensors "
                             f"(got a tensor on {tensor.device}; it needs {self.device_type} tensors)")
        if not tensor.is_contiguous():
            raise ValueError("Tensors must be contiguous")
        return tensor._data

    def check_rank(self, rank: int, function: str, argument: str) -> int:
        if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank < self.size:
            raise ValueError(f"{function}(): invalid {argument} {rank!r} for a group of world size {self.size}")
        return rank

    def exchange_objects(self, value, description: str) -> list:
        """Returns every rank's ``value`` (a small picklable object), in rank order."""
        payload = np.frombuffer(pickle.dumps(value), dtype=np.uint8)
        lengths = self._all_gather_bytes(np.frombuffer(np.int64(payload.size).tobytes(), np.uint8), description)
        longest = int(max(int(np.frombuffer(row.tobytes(), np.int64)[0]) for row in lengths))
        padded = np.zeros(longest, np.uint8)
        padded[:payload.size] = payload
        rows = self._all_gather_bytes(padded, description)
        return [pickle.loads(row.tobytes()) for row in rows]

    def fingerprint_check(self, op_type: str, tensors) -> None:
        """Raises ``RuntimeError`` on every rank when the ranks are not running the same collective."""
        self._sequence_number += 1
        if not self.check_collectives:
            return
        fingerprint = (op_type, [list(t.shape) for t in tensors], [str(t.dtype) for t in tensors])
        everyone = self.exchange_objects(fingerprint, f"the collective check before {op_type}")
        for other, theirs in enumerate(everyone):
            if theirs != fingerprint:
                first, second = sorted((self.rank, other))
                raise RuntimeError(
                    "Detected mismatch between collectives on ranks. Rank "
                    f"{first} is running collective: {_describe(self._sequence_number, everyone[first])}, but Rank "
                    f"{second} is running collective: {_describe(self._sequence_number, everyone[second])}.")

    def rooted_arrays(self, function: str, tensor, tensor_list: list, argument: str, root: int,
                      op_type: str) -> tuple:
        """``gather``'s or ``scatter``'s checked arguments, as (array, arrays of ``tensor_list``): the list must
        hold one tensor like ``tensor`` per rank on the root."""
        array = self.check_tensor(tensor, function)
        arrays = [self.check_tensor(t, function, argument) for t in tensor_list]
        if self.rank == root:
            _check_same(tensor, tensor_list, function, argument, self.size)
        self.fingerprint_check(op_type, [tensor])
        return array, arrays

    def all_to_all_arrays(self, output_list: list, input_list: list) -> tuple:
        """``all_to_all``'s checked arguments, as (output arrays, input arrays): one tensor per rank each."""
        outputs = [self.check_tensor(t, "all_to_all", "output_tensor_list") for t in output_list]
        inputs = [self.check_tensor(t, "all_to_all", "input_tensor_list") for t in input_list]
        for name, arrays in (("output_tensor_list", outputs), ("input_tensor_list", inputs)):
            if len(arrays) != self.size:
                raise ValueError(f"all_to_all(): {name} must hold one tensor per rank ({self.size}), got "
                                 f"{len(arrays)}")
        self.fingerprint_check("ALLTOALL", [])
        return outputs, inputs

    def destroy(self) -> None:
        pass


def _describe(sequence_number: int, fingerprint) -> str:
    op_type, shapes, dtypes = fingerprint
    shape_text = ", ".join(str(s) for s in shapes)
    return (f"CollectiveFingerPrint(SequenceNumber={sequence_number}, OpType={op_type}, TensorShape=[{shape_text}], "
            f"TensorDtypes={', '.join(dtypes)})")


def _check_same(tensor, tensor_list, function: str, argument: str, size: int) -> None:
    if len(tensor_list) != size:
        raise ValueError(f"{function}(): {argument} must hold one tensor per rank ({size}), got {len(tensor_list)}")
    for other in tensor_list:
        if other.shape != tensor.shape or other.dtype != tensor.dtype:
            raise ValueError(f"{function}(): every tensor of {argument} must match the shape and dtype of the other "
                             f"argument ({list(tensor.shape)}, {tensor.dtype}); got {list(other.shape)}, {other.dtype}")
