"""``gradcore.save`` and ``gradcore.load``: tensors and containers of them in a file that loads without running code.

The file is a zip archive of two kinds of entries:

* ``manifest.json``: ``{"format": "gradcore", "version": 1, "root": node}``, where a node describes one
  value by its ``"type"``: ``none``, ``bool``, ``int``, ``float``, ``str``, ``list``, ``tuple``, ``dict``
  and ``ordered_dict`` (keys and values as a list of node pairs, since keys may be ints), ``dtype``,
  ``device``, ``size``, ``tensor`` and ``ref`` (a tensor saved earlier in the same file, so that one tensor
  saved twice loads as one tensor).
* ``tensors/<n>.npy``: the data of tensor ``n`` in numpy's ``.npy`` format, written and read with pickling
  disabled. Its node records ``dtype``, ``shape``, ``device`` and ``requires_grad``.
* ``storages/<n>.npy`` (version 2, only when two saved tensors share memory): the flat data of storage ``n``;
  the node of each tensor viewing it records ``storage``, ``offset`` and ``strides`` (in elements) instead of
  a ``tensors/`` entry, so that the tensors share memory again once loaded: the storage is copied once to the
  device they load on (a CUDA device included), and each tensor is a strided view of it there. (Under a
  callable ``map_location``, which places tensors one by one, they load as copies.)

Loading only ever builds the types above, so a file cannot make it run code; anything else (a pickle, a zip
without the manifest, an unknown node type, a header that disagrees with its data, a compressed member, a
manifest over ``MAX_MANIFEST_BYTES``, a view reaching outside its storage) raises RuntimeError. Every size is
checked against the archive before anything is allocated, so a small file cannot ask for a large allocation.

``save`` checks the whole object before writing anything, and to a path it writes a temporary file in the same
folder that replaces the target only once complete: a failed save leaves an existing file as it was.

``save_safetensors`` and ``load_safetensors`` exchange a flat dict of tensors (a ``state_dict``) with the
safetensors format, through the ``safetensors`` package (``pip install gradcore[safetensors]``).
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zipfile
from collections import OrderedDict
from typing import Any, BinaryIO, Callable, Union

# numpy only for its .npy file format (the arrays' bytes on disk), not for math.
import numpy as np

from . import _dtypes
from .autograd.grad_mode import no_grad
from .backend import array_module, backend_of, get_backend, to_device
from .backend import cuda as _cuda_backend
from .backend import device as Device
from .tensor import Size, Tensor, make_tensor

__all__ = ["load", "save", "save_safetensors", "load_safetensors"]

FORMAT_NAME = "gradcore"
FORMAT_VERSION = 1
#: The version written when tensors share storage; the loader reads both.
SHARED_STORAGE_VERSION = 2
READABLE_VERSIONS = (FORMAT_VERSION, SHARED_STORAGE_VERSION)
MANIFEST = "manifest.json"
#: The largest manifest the loader reads: about a million tensor entries.
MAX_MANIFEST_BYTES = 256 * 1024 * 1024

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
    """Turns an object into manifest nodes, and lists the arrays to write; nothing is written until all of the
    object has been checked."""

    def __init__(self) -> None:
        self.tensor_ids: dict[int, int] = {}
        self.tensors: list[Tensor] = []  # keeps saved tensors alive, so that their ids stay unique
        self.nodes: list[dict[str, Any]] = []
        self.members: list[tuple[str, Any]] = []  # (member name, host array), written in this order

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
        self.tensors.append(tensor)
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
        self.nodes.append(node)
        return node

    def plan(self) -> int:
        """Decides what each tensor's data is written as, and returns the format version this needs.

        Tensors whose arrays view one buffer of one device (a tensor and its views, or several views of one
        tensor) are written as one storage and their places in it; every other tensor as its own array.
        """
        groups: dict[tuple[int, str], list[int]] = {}
        for i, tensor in enumerate(self.tensors):
            root = _root_array(tensor._data)
            if root is not None:
                groups.setdefault((id(root), str(tensor.device)), []).append(i)
        shared: dict[int, tuple[int, int, list[int]]] = {}
        storages = 0
        for members in groups.values():
            if len(members) < 2:
                continue
            root = _root_array(self.tensors[members[0]]._data)
            places = [_place_in(root, self.tensors[i]._data) for i in members]
            if any(place is None for place in places):
                continue
            flat = root.reshape(-1)
            self.members.append((f"storages/{storages}.npy", np.asarray(backend_of(flat).to_numpy(flat))))
            for i, (offset, strides) in zip(members, places):
                shared[i] = (storages, offset, strides)
            storages += 1
        for i, (tensor, node) in enumerate(zip(self.tensors, self.nodes)):
            if i in shared:
                node["storage"], node["offset"], node["strides"] = shared[i]
            else:
                host = np.asarray(backend_of(tensor._data).to_numpy(tensor._data), order="C")
                self.members.append((f"tensors/{i}.npy", host))
        return SHARED_STORAGE_VERSION if storages else FORMAT_VERSION

    def write(self, archive: zipfile.ZipFile, root: dict[str, Any], version: int) -> None:
        for name, host in self.members:
            with archive.open(name, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, host, allow_pickle=False)
        manifest = {"format": FORMAT_NAME, "version": version, "root": root}
        archive.writestr(MANIFEST, json.dumps(manifest))


def _root_array(array) -> Any:
    """The C-contiguous array at the bottom of ``array``'s chain of views (numpy's or CuPy's ``base``), or None
    (a root that is not a C-contiguous array of the same dtype)."""
    array_type = np.ndarray if isinstance(array, np.ndarray) else type(array)
    root = array
    while isinstance(root.base, array_type):
        root = root.base
    if not root.flags.c_contiguous or root.dtype != array.dtype:
        return None
    return root


def _address(array) -> int:
    """The address of an array's first element: numpy's from its array interface, CuPy's from its pointer."""
    if isinstance(array, np.ndarray):
        return array.__array_interface__["data"][0]
    return int(array.data.ptr)


def _place_in(root, array) -> tuple[int, list[int]] | None:
    """(offset, strides) of ``array`` in ``root``, in elements, or None where they are not whole elements."""
    itemsize = array.dtype.itemsize
    delta = _address(array) - _address(root)
    if delta % itemsize or any(stride % itemsize for stride in array.strides):
        return None
    return delta // itemsize, [stride // itemsize for stride in array.strides]


def _is_parameter(tensor: Tensor) -> bool:
    return type(tensor).__name__ == "Parameter" and type(tensor).__module__.startswith("gradcore.nn")


def save(obj: Any, f: FileLike) -> None:
    """Saves an object to a disk file (a path or a writable binary file object).

    ``obj`` may be a tensor, a number, a string, None, a dtype, a device, or dicts (also OrderedDicts), lists
    and tuples of these, such as a module's or an optimizer's ``state_dict()``. The whole object is checked
    before anything is written; a path is written through a temporary file in the same folder that replaces
    it only when complete, so a failed save never touches an existing file.
    """
    writer = _Writer()
    root = writer.encode(obj)
    version = writer.plan()
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        folder = os.path.dirname(os.path.abspath(path))
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                _write(writer, root, version, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
    else:
        _write(writer, root, version, f)


def _write(writer: _Writer, root: dict[str, Any], version: int, handle: BinaryIO) -> None:
    # Tensors are stored uncompressed: their bytes rarely compress well, and loading stays fast.
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        writer.write(archive, root, version)


# -- loading ----------------------------------------------------------------------------------------------
class _Reader:
    """Rebuilds an object from manifest nodes, reading each tensor's data from the archive."""

    def __init__(self, archive: zipfile.ZipFile, map_location: MapLocation, where: str, version: int) -> None:
        self.archive = archive
        self.members = {info.filename: info for info in archive.infolist()}
        self.map_location = map_location
        self.where = where
        self.version = version
        self.tensors: dict[int, Tensor] = {}
        self.storages: dict[int, Any] = {}  # storage index -> its array on the CPU
        self.device_storages: dict[tuple[int, str], Any] = {}  # (storage index, device) -> its array there

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
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise self.fail(f"tensor {index} has an invalid shape {shape}")
        location = str(self.parse_device(self.field(node, "device", str)))
        requires_grad = self.field(node, "requires_grad", bool)

        if "storage" in node and not callable(self.map_location):
            # Built as a view of its storage on the target device, so that the tensors sharing it when saved
            # share it again there.
            tensor = make_tensor(self.read_view(node, index, dtype, shape, self.target(location)))
        elif "storage" in node:
            tensor = self.place(make_tensor(self.read_view(node, index, dtype, shape, None)), location)
        else:
            array = self.read_array(f"tensors/{index}.npy", f"tensor {index}", dtype, shape)
            tensor = self.place(make_tensor(array), location)
        if node.get("parameter"):
            from .nn import Parameter

            tensor = Parameter(tensor, requires_grad=requires_grad)
        elif requires_grad:
            tensor.requires_grad_(True)
        self.tensors[index] = tensor
        return tensor

    def read_view(self, node: dict[str, Any], index: int, dtype, shape: list, target: Device | None) -> Any:
        """A tensor's array as a view into its storage, after checking that every element lies inside it.

        The storage is copied to ``target`` once (None: left on the CPU), and every view of it is made there.
        """
        if self.version < SHARED_STORAGE_VERSION:
            raise self.fail(f"tensor {index} refers to a storage, which version {self.version} files do not have")
        storage_index = self.field(node, "storage", int)
        offset = self.field(node, "offset", int)
        strides = self.field(node, "strides", list)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in strides) or len(strides) != len(shape):
            raise self.fail(f"tensor {index} has invalid strides {strides} for its shape {shape}")
        storage = self.storages.get(storage_index)
        if storage is None:
            storage = self.read_array(f"storages/{storage_index}.npy", f"storage {storage_index}", dtype, None)
            self.storages[storage_index] = storage
        if storage.dtype != dtype.numpy:
            raise self.fail(f"tensor {index} is {dtype.name} but its storage {storage_index} holds {storage.dtype}")
        if all(n > 0 for n in shape):
            lowest = offset + sum(stride * (n - 1) for stride, n in zip(strides, shape) if stride < 0)
            highest = offset + sum(stride * (n - 1) for stride, n in zip(strides, shape) if stride > 0)
            if lowest < 0 or highest >= storage.size:
                raise self.fail(f"tensor {index} reaches elements {lowest} to {highest} of storage "
                                f"{storage_index}, which has {storage.size}")
        elif not 0 <= offset <= storage.size:
            raise self.fail(f"tensor {index} starts at element {offset} of storage {storage_index}, which has "
                            f"{storage.size}")
        itemsize = storage.dtype.itemsize
        if target is not None and target.type != "cpu":
            key = (storage_index, str(target))
            on_device = self.device_storages.get(key)
            if on_device is None:
                on_device = self.device_storages[key] = to_device(storage, get_backend(target))
            storage = on_device
        byte_strides = tuple(stride * itemsize for stride in strides)
        if type(storage) is np.ndarray:
            # A view whose base is the storage itself, so that the tensors stay one storage if saved again.
            return np.ndarray(tuple(shape), storage.dtype, buffer=storage, offset=offset * itemsize,
                              strides=byte_strides)
        base = storage[offset:] if offset < storage.size else storage[storage.size:]
        return array_module(base).lib.stride_tricks.as_strided(base, shape=tuple(shape), strides=byte_strides)

    def read_array(self, name: str, what: str, dtype, shape: list | None) -> Any:
        """Reads the .npy member ``name``, checking its header against ``dtype`` and ``shape`` (any 1-d shape
        when None) and its size against the archive before allocating the array."""
        info = self.members.get(name)
        if info is None:
            raise self.fail(f"the data of {what} ({name}) is missing")
        with self.archive.open(info) as entry:
            try:
                major, minor = np.lib.format.read_magic(entry)
                if (major, minor) == (1, 0):
                    header_shape, fortran, header_dtype = np.lib.format.read_array_header_1_0(entry)
                elif (major, minor) == (2, 0):
                    header_shape, fortran, header_dtype = np.lib.format.read_array_header_2_0(entry)
                else:
                    raise ValueError(f"unsupported .npy version {major}.{minor}")
            except (ValueError, OSError, EOFError, SyntaxError, TypeError) as error:
                raise self.fail(f"the data of {what} ({name}) has an invalid header: {error}") from None
            if header_dtype.hasobject:
                raise self.fail(f"the data of {what} ({name}) cannot be read: it holds pickled Python objects, "
                                "which gradcore never unpickles")
            if header_dtype != dtype.numpy or fortran:
                raise self.fail(f"{what} is described as {dtype.name} but its data is {header_dtype}")
            if shape is not None and list(header_shape) != shape:
                raise self.fail(f"{what} is described as {dtype.name} {shape} but its data is {header_dtype} "
                                f"{list(header_shape)}")
            if shape is None and len(header_shape) != 1:
                raise self.fail(f"{what} is not one-dimensional: {list(header_shape)}")
            count = 1
            for n in header_shape:
                count *= n
            size = count * header_dtype.itemsize
            if entry.tell() + size != info.file_size:
                raise self.fail(f"the data of {what} ({name}) holds {info.file_size - entry.tell()} bytes, not the "
                                f"{size} that {list(header_shape)} {header_dtype} takes")
            array = np.empty(header_shape, dtype=header_dtype)
            view = memoryview(array.reshape(-1).view(np.uint8)) if size else None
            got = 0
            while view is not None and got < size:
                n = entry.readinto(view[got:])
                if not n:
                    raise self.fail(f"the data of {what} ({name}) ends early")
                got += n
            entry.read(1)  # reaching the end of the member makes zipfile check its CRC
        return array

    def target(self, location: str) -> Device:
        """Where a tensor saved from ``location`` goes under a ``map_location`` that is not a callable (checked
        to exist)."""
        target: Any = location
        mapping = self.map_location
        if isinstance(mapping, dict):
            target = mapping.get(location, location)
        elif mapping is not None:
            target = mapping
        target = Device(target)
        if target.type == "cuda":
            self.check_cuda(target)
        return target

    def place(self, tensor: Tensor, location: str) -> Tensor:
        """Moves a CPU tensor read from the file to where ``map_location`` says (by default, where it was saved)."""
        mapping = self.map_location
        if callable(mapping):
            result = mapping(tensor, location)
            if isinstance(result, Tensor):
                return result
            target = Device(location)  # the callable returned None: restore to the saved location
            if target.type == "cuda":
                self.check_cuda(target)
        else:
            target = self.target(location)
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
        return _load_archive(handle, map_location, where)
    except RuntimeError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, KeyError, IndexError,
            TypeError, OverflowError, struct.error, NotImplementedError, UnicodeDecodeError) as error:
        # A damaged archive surfaces in zipfile and numpy as many kinds of error; all of them mean the same.
        raise RuntimeError(f"{where} is not a valid gradcore checkpoint: {type(error).__name__}: {error}") from None


def _load_archive(handle: BinaryIO, map_location: MapLocation, where: str) -> Any:
    position = handle.tell()
    archive_size = handle.seek(0, io.SEEK_END) - position
    handle.seek(position)
    archive = zipfile.ZipFile(handle)
    with archive:
        names = archive.namelist()
        if MANIFEST not in names:
            hint = ""
            if any(name.endswith("data.pkl") for name in names):
                hint = " It looks like a PyTorch checkpoint, whose pickled data gradcore.load does not read."
            raise RuntimeError(
                f"{where} is not a valid gradcore checkpoint: the archive has no {MANIFEST}.{hint}"
            )
        # gradcore writes every member uncompressed, and no member can be larger than the archive holding it:
        # checked before anything is read, so that a small file cannot ask for a large allocation.
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise RuntimeError(f"{where} is not a valid gradcore checkpoint: member {info.filename!r} is "
                                   "compressed, and gradcore writes no compressed members")
            if info.file_size != info.compress_size or info.file_size > archive_size:
                raise RuntimeError(f"{where} is not a valid gradcore checkpoint: member {info.filename!r} "
                                   f"declares {info.file_size} bytes, more than the archive holds")
        manifest_info = archive.getinfo(MANIFEST)
        if manifest_info.file_size > MAX_MANIFEST_BYTES:
            raise RuntimeError(f"{where} is not a valid gradcore checkpoint: its {MANIFEST} has "
                               f"{manifest_info.file_size} bytes, more than the {MAX_MANIFEST_BYTES} allowed")
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
        if version not in READABLE_VERSIONS or isinstance(version, bool):
            raise RuntimeError(
                f"{where} was written in version {version!r} of the gradcore format; this version of "
                f"gradcore reads versions {', '.join(str(v) for v in READABLE_VERSIONS)}"
            )
        try:
            return _Reader(archive, map_location, where, version).decode(manifest["root"])
        except RecursionError:
            raise RuntimeError(
                f"{where} is not a valid gradcore checkpoint: its entries are nested too deeply"
            ) from None


# -- safetensors ------------------------------------------------------------------------------------------
def _safetensors_numpy():
    try:
        import safetensors.numpy as safetensors_numpy
    except ImportError:
        raise ImportError("save_safetensors and load_safetensors need the safetensors package: "
                          "pip install 'gradcore[safetensors]'") from None
    return safetensors_numpy


def save_safetensors(tensors: dict[str, Tensor], filename: str | os.PathLike,
                     metadata: dict[str, str] | None = None) -> None:
    """Saves a flat dict of tensors (such as a ``state_dict()``) to a ``.safetensors`` file.

    The file is what ``safetensors.torch.load_file`` reads: keys, dtypes, shapes and bytes. Tensors are
    copied to the host; the ones that share memory are written as independent copies, as safetensors asks.
    The file is written atomically, as ``save`` writes.
    """
    safetensors_numpy = _safetensors_numpy()
    if not isinstance(tensors, dict):
        raise TypeError(f"save_safetensors expects a dict of tensors, not {type(tensors).__name__}")
    arrays = {}
    for key, tensor in tensors.items():
        if not isinstance(key, str):
            raise TypeError(f"save_safetensors: keys must be strings, got {type(key).__name__} ({key!r})")
        if not isinstance(tensor, Tensor):
            raise TypeError(f"save_safetensors: the value of {key!r} is a {type(tensor).__name__}, not a Tensor")
        host = backend_of(tensor._data).to_numpy(tensor._data)
        arrays[key] = np.array(host, order="C", copy=True)  # (ascontiguousarray would make 0-d arrays 1-d)
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("save_safetensors: metadata must map strings to strings")
    path = os.fspath(filename)
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(descriptor)
    try:
        safetensors_numpy.save_file(arrays, temporary, metadata=metadata)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def load_safetensors(filename: str | os.PathLike, device: str | Device = "cpu") -> dict[str, Tensor]:
    """Loads a ``.safetensors`` file into a dict of tensors on ``device``.

    Any file that is not a valid safetensors file, or holds a dtype gradcore lacks (bfloat16, float8), raises
    RuntimeError.
    """
    safetensors_numpy = _safetensors_numpy()
    where = _describe(filename)
    try:
        arrays = safetensors_numpy.load_file(os.fspath(filename))
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise RuntimeError(f"{where} is not a valid safetensors file: {error}") from None
    except Exception as error:  # the package's own SafetensorError
        if type(error).__name__ == "SafetensorError":
            raise RuntimeError(f"{where} is not a valid safetensors file: {error}") from None
        raise
    target = Device(device)
    result = {}
    for key, array in arrays.items():
        if array.dtype not in {d.numpy for d in _dtypes.ALL_DTYPES}:
            raise RuntimeError(f"{where}: tensor {key!r} has dtype {array.dtype}, which gradcore does not have")
        tensor = make_tensor(array if array.flags.c_contiguous else array.copy())
        result[key] = tensor if target.type == "cpu" else tensor.to(target)
    return result
