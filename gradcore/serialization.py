"""``gradcore.save`` and ``gradcore.load``: tensors and containers of them in a file that loads without running code.

The file is a zip archive of two kinds of entries:

* ``manifest.json``: ``{"format": "gradcore", "version": 1, "root": node}``, where a node describes one
  value by its ``"type"``: ``none``, ``bool``, ``int``, ``float``, ``str``, ``list``, ``tuple``, ``dict``
  and ``ordered_dict`` (keys and values as a list of node pairs, since keys may be ints), ``dtype``,
  ``device``, ``size``, ``tensor`` and ``ref`` (a tensor saved earlier in the same file, so that one tensor
  saved twice loads as one tensor).
* ``tensors/<n>.npy``: the data of tensor ``n`` in numpy's ``.npy`` format, written and read with pickling
  disabled. Its node records ``dtype``, ``shape``, ``device`` and ``requires_grad``.

Loading only ever builds the types above, so a file cannot make it run code; anything else (a pickle, a zip
without the manifest, an unknown node type, a header that disagrees with its data) raises RuntimeError.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections import OrderedDict
from typing import Any, BinaryIO, Callable, Union

# numpy only for its .npy file format (the arrays' bytes on disk), not for math.
import numpy as np

from . import _dtypes
from .autograd.grad_mode import no_grad
from .backend import backend_of
from .backend import cuda as _cuda_backend
from .backend import device as Device
from .tensor import Size, Tensor, make_tensor

__all__ = ["load", "save"]

FORMAT_NAME = "gradcore"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

FileLike = Union[str, os.PathLike, BinaryIO, io.BytesIO]
MapLocation = Union[None, str, Device, dict[str, str], Callable[[Tensor, str], Any]]

_DTYPES_BY_NAME = {d.name: d for d in _dtypes.ALL_DTYPES}


def _describe(f: Any) -> str:
    """Names the file in messages: its path, or the kind of file object."""
    if isinstance(f, (str, os.PathLike)):
        return repr(os.fspath(f))
    name = getattr(f, "name", None)
    return repr(name) if isinstance(name, str) else f"<{type(f).__name__}>"


# -- saving -----------------------------------------------------------------------------------------------
class _Writer:
    """Turns an object into manifest nodes, writing each tensor's data as it goes."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.tensor_ids: dict[int, int] = {}
        self.keep_alive: list = []  # holds saved tensors so their ids stay unique while saving

    def encode(self, obj: Any) -> dict[str, Any]:
        if obj is None:
            return {"type": "none"}
        if isinstance(obj, bool):
            return {"type": "bool", "value": obj}
        if isinstance(obj, int):
            return {"type": "int", "value": int(obj)}
        if isinstance(obj, float):
            # JSON has no inf or nan; repr() round-trips every float exactly.
            return {"type": "float", "value": repr(float(obj))}
        if isinstance(obj, str):
            return {"type": "str", "value": obj}
        if isinstance(obj, Tensor):
            return self.encode_tensor(obj)
        if isinstance(obj, _dtypes.dtype):
            return {"type": "dtype", "value": obj.name}
        if isinstance(obj, Device):
            return {"type": "device", "value": str(obj)}
        if isinstance(obj, Size):
            return {"type": "size", "value": [int(s) for s in obj]}
        if isinstance(obj, OrderedDict):
            return {
                "type": "ordered_dict",
                "items": [[self.encode(k), self.encode(v)] for k, v in obj.items()],
            }
        if isinstance(obj, dict):  # other dict subclasses (defaultdict) load as plain dicts
            return {"type": "dict", "items": [[self.encode(k), self.encode(v)] for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):  # subclasses (named tuples) load as plain lists and tuples
            kind = "list" if isinstance(obj, list) else "tuple"
            return {"type": kind, "items": [self.encode(item) for item in obj]}
        raise TypeError(
            f"gradcore.save cannot save an object of type {type(obj).__module__}.{type(obj).__qualname__}: "
            "only tensors, numbers, strings, None, dtypes, devices and dicts, lists and tuples of them "
            "can be saved"
        )

    def encode_tensor(self, tensor: Tensor) -> dict[str, Any]:
        known = self.tensor_ids.get(id(tensor))
        if known is not None:
            return {"type": "ref", "id": known}
        index = self.tensor_ids[id(tensor)] = len(self.tensor_ids)
        self.keep_alive.append(tensor)
        host = np.asarray(backend_of(tensor._data).to_numpy(tensor._data), order="C")
        with self.archive.open(f"tensors/{index}.npy", "w", force_zip64=True) as entry:
            np.lib.format.write_array(entry, host, allow_pickle=False)
        node = {
            "type": "tensor",
            "id": index,
            "dtype": tensor.dtype.name,
            "shape": list(tensor.shape),
            "device": str(tensor.device),
            "requires_grad": bool(tensor.requires_grad),
        }
        if _is_parameter(tensor):
            node["parameter"] = True
        return node


def _is_parameter(tensor: Tensor) -> bool:
    return type(tensor).__name__ == "Parameter" and type(tensor).__module__.startswith("gradcore.nn")


def save(obj: Any, f: FileLike) -> None:
    """Saves an object to a disk file (a path or a writable binary file object).

    ``obj`` may be a tensor, a number, a string, None, a dtype, a device, or dicts (also OrderedDicts), lists
    and tuples of these, such as a module's or an optimizer's ``state_dict()``.
    """
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as handle:
            _save(obj, handle)
    else:
        _save(obj, f)


def _save(obj: Any, handle: BinaryIO) -> None:
    # Tensors are stored uncompressed: their bytes rarely compress well, and loading stays fast.
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        writer = _Writer(archive)
        root = writer.encode(obj)
        manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root}
        archive.writestr(MANIFEST, json.dumps(manifest))


# -- loading ----------------------------------------------------------------------------------------------
class _Reader:
    """Rebuilds an object from manifest nodes, reading each tensor's data from the archive."""

    def __init__(self, archive: zipfile.ZipFile, map_location: MapLocation, where: str) -> None:
        self.archive = archive
        self.map_location = map_location
        self.where = where
        self.tensors: dict[int, Tensor] = {}

    def fail(self, reason: str) -> RuntimeError:
        return RuntimeError(f"{self.where} is not a valid gradcore checkpoint: {reason}")

    def field(self, node: dict[str, Any], key: str, kind: type | tuple) -> Any:
        value = node.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"a {node.get('type')!r} entry has no valid {key!r}")
        return value

    def decode(self, node: Any) -> Any:
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            raise self.fail(f"expected an entry with a 'type', found {type(node).__name__}")
        kind = node["type"]
        if kind == "none":
            return None
        if kind == "bool":
            return self.field(node, "value", bool)
        if kind == "int":
            return self.field(node, "value", int)
        if kind == "float":
            text = self.field(node, "value", str)
            try:
                return float(text)
            except ValueError:
                raise self.fail(f"{text!r} is not a float") from None
        if kind == "str":
            return self.field(node, "value", str)
        if kind in ("list", "tuple"):
            items = [self.decode(item) for item in self.field(node, "items", list)]
            return items if kind == "list" else tuple(items)
        if kind in ("dict", "ordered_dict"):
            pairs = self.field(node, "items", list)
            result = OrderedDict() if kind == "ordered_dict" else {}
            for pair in pairs:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise self.fail("a dict item is not a [key, value] pair")
                key = self.decode(pair[0])
                try:
                    result[key] = self.decode(pair[1])
                except TypeError:
                    raise self.fail(f"a dict key of type {type(key).__name__} is not hashable") from None
            return result
        if kind == "dtype":
            name = self.field(node, "value", str)
            if name not in _DTYPES_BY_NAME:
                raise self.fail(f"unknown dtype {name!r}")
            return _DTYPES_BY_NAME[name]
        if kind == "device":
            return self.parse_device(self.field(node, "value", str))
        if kind == "size":
            values = self.field(node, "value", list)
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise self.fail("a size holds a value that is not an int")
            return Size(values)
        if kind == "tensor":
            return self.decode_tensor(node)
        if kind == "ref":
            index = self.field(node, "id", int)
            if index not in self.tensors:
                raise self.fail(f"a reference to tensor {index}, which comes before it is defined")
            return self.tensors[index]
        raise self.fail(f"unknown entry type {kind!r}")

    def parse_device(self, text: str) -> Device:
        try:
            return Device(text)
        except (RuntimeError, ValueError):
            raise self.fail(f"unknown device {text!r}") from None

    def decode_tensor(self, node: dict[str, Any]) -> Tensor:
        index = self.field(node, "id", int)
        if index in self.tensors:
            raise self.fail(f"tensor {index} is defined twice")
        dtype_name = self.field(node, "dtype", str)
        dtype = _DTYPES_BY_NAME.get(dtype_name)
        if dtype is None:
            raise self.fail(f"unknown dtype {dtype_name!r}")
        shape = self.field(node, "shape", list)
        location = str(self.parse_device(self.field(node, "device", str)))
        requires_grad = self.field(node, "requires_grad", bool)

        name = f"tensors/{index}.npy"
        try:
            with self.archive.open(name) as entry:
                array = np.lib.format.read_array(entry, allow_pickle=False)
        except KeyError:
            raise self.fail(f"the data of tensor {index} ({name}) is missing") from None
        except (ValueError, OSError, EOFError) as error:
            raise self.fail(f"the data of tensor {index} ({name}) cannot be read: {error}") from None
        if array.dtype != dtype.numpy or list(array.shape) != shape:
            raise self.fail(
                f"tensor {index} is described as {dtype_name} {shape} but its data is "
                f"{array.dtype} {list(array.shape)}"
            )

        tensor = self.place(make_tensor(array), location)
        if node.get("parameter"):
            from .nn import Parameter

            tensor = Parameter(tensor, requires_grad=requires_grad)
        elif requires_grad:
            tensor.requires_grad_(True)
        self.tensors[index] = tensor
        return tensor

    def place(self, tensor: Tensor, location: str) -> Tensor:
        """Moves a CPU tensor read from the file to where ``map_location`` says (by default, where it was saved)."""
        target: Any = location
        mapping = self.map_location
        if callable(mapping):
            result = mapping(tensor, location)
            if isinstance(result, Tensor):
                return result
            target = location  # the callable returned None: restore to the saved location
        elif isinstance(mapping, dict):
            target = mapping.get(location, location)
        elif mapping is not None:
            target = mapping
        target = Device(target)
        if target.type == "cuda":
            self.check_cuda(target)
        with no_grad():
            return tensor.to(target)

    def check_cuda(self, target: Device) -> None:
        if not _cuda_backend.is_available():
            raise RuntimeError(
                f"Attempting to deserialize object on a CUDA device but gradcore.cuda.is_available() is False "
                f"(loading {self.where}). If you are running on a CPU-only machine, please use gradcore.load with "
                "map_location=gradcore.device('cpu') to map your storages to the CPU."
            )
        count = _cuda_backend.device_count()
        if target.index is not None and target.index >= count:
            raise RuntimeError(
                f"Attempting to deserialize object on CUDA device {target.index} but gradcore.cuda.device_count() "
                f"is {count} (loading {self.where}). Please use gradcore.load with map_location to map your "
                "storages to an existing device."
            )


def load(
    f: FileLike,
    map_location: MapLocation = None,
    pickle_module: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
    **pickle_load_args: Any,
) -> Any:
    """Loads an object saved with ``gradcore.save`` from a file (a path or a readable binary file object).

    ``map_location`` says where tensors go: None puts each on the device it was saved from; a device or a
    string (``'cpu'``) puts all of them there; a dict maps saved locations to new ones
    (``{'cuda:0': 'cpu'}``); a callable ``(tensor, location) -> tensor`` gets each tensor on the CPU with
    the location string it was saved from and returns it placed (None: the saved location).

    The format never runs code when loading, so ``weights_only`` (True or False) changes nothing; the
    pickle arguments are accepted for compatibility and ignored. Files that are not gradcore checkpoints
    raise RuntimeError.
    """
    where = _describe(f)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as handle:
            return _load(handle, map_location, where)
    return _load(f, map_location, where)


def _load(handle: BinaryIO, map_location: MapLocation, where: str) -> Any:
    start = handle.read(4)
    handle.seek(-len(start), io.SEEK_CUR)
    if not start.startswith(b"PK"):
        hint = ""
        if start[:1] == b"\x80":
            hint = (
                " It looks like a pickle file; gradcore.load never unpickles, since unpickling can run code."
            )
        raise RuntimeError(f"{where} is not a valid gradcore checkpoint: it is not a zip archive.{hint}")
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise RuntimeError(f"{where} is not a valid gradcore checkpoint: {error}") from None
    with archive:
        if MANIFEST not in archive.namelist():
            hint = ""
            if any(name.endswith("data.pkl") for name in archive.namelist()):
                hint = " It looks like a PyTorch checkpoint, whose pickled data gradcore.load does not read."
            raise RuntimeError(
                f"{where} is not a valid gradcore checkpoint: the archive has no {MANIFEST}.{hint}"
            )
        try:
            manifest = json.loads(archive.read(MANIFEST).decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            raise RuntimeError(
                f"{where} is not a valid gradcore checkpoint: {MANIFEST} is not valid JSON ({error})"
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME or "root" not in manifest:
            raise RuntimeError(
                f"{where} is not a valid gradcore checkpoint: {MANIFEST} does not describe a "
                f"{FORMAT_NAME} file"
            )
        version = manifest.get("version")
        if version != FORMAT_VERSION:
            raise RuntimeError(
                f"{where} was written in version {version!r} of the gradcore format; this version of "
                f"gradcore reads version {FORMAT_VERSION}"
            )
        try:
            return _Reader(archive, map_location, where).decode(manifest["root"])
        except RecursionError:
            raise RuntimeError(
                f"{where} is not a valid gradcore checkpoint: its entries are nested too deeply"
            ) from None
