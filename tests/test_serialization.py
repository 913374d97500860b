"""gradcore.save / gradcore.load: bit-for-bit round trips, map_location, and files that must be refused."""

import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import gradcore

ALL_DTYPES = [
    gradcore.float16,
    gradcore.float32,
    gradcore.float64,
    gradcore.uint8,
    gradcore.int8,
    gradcore.int16,
    gradcore.int32,
    gradcore.int64,
    gradcore.bool,
]


def round_trip(obj, **load_args):
    buffer = io.BytesIO()
    gradcore.save(obj, buffer)
    buffer.seek(0)
    return gradcore.load(buffer, **load_args)


def assert_bitwise_equal(loaded, original):
    assert type(loaded) is type(original)
    assert (
        loaded.dtype is original.dtype and loaded.shape == original.shape and loaded.device == original.device
    )
    assert loaded.requires_grad == original.requires_grad
    ours, theirs = loaded.detach().numpy(), original.detach().numpy()
    assert ours.tobytes() == np.ascontiguousarray(theirs).tobytes()


# -- round trips ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (5,), (2, 3, 4)], ids=str)
def test_tensors_round_trip_bit_for_bit(dtype, shape):
    values = np.random.default_rng(0).standard_normal(shape) * 100
    tensor = gradcore.tensor(values).to(dtype)
    assert_bitwise_equal(round_trip(tensor), tensor)


def test_special_float_values_survive():
    tensor = gradcore.from_numpy(np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308]))
    assert_bitwise_equal(round_trip(tensor), tensor)
    half = gradcore.from_numpy(np.array([65504.0, 6e-8, np.nan, -np.inf], dtype=np.float16))
    assert_bitwise_equal(round_trip(half), half)


def test_views_and_non_contiguous_tensors_save_their_values():
    base = gradcore.arange(24, dtype=gradcore.float32).reshape(4, 6)
    view = base.t()[1:4]
    assert not view.is_contiguous()
    loaded = round_trip(view)
    assert loaded.tolist() == view.tolist() and loaded.is_contiguous()


def test_requires_grad_is_kept_and_the_graph_is_not():
    leaf = gradcore.tensor([1.0, 2.0], requires_grad=True)
    result = round_trip({"leaf": leaf, "computed": leaf * 2})
    assert result["leaf"].requires_grad and result["leaf"].is_leaf
    assert result["computed"].is_leaf and result["computed"].requires_grad
    assert result["computed"].tolist() == [2.0, 4.0]


def test_nested_containers_keep_their_types_keys_and_scalars():
    obj = {
        "tensor": gradcore.ones(2),
        0: [1, 2.5, -3, True, None, "text", (4, (5.0,))],
        "ordered": OrderedDict([("b", gradcore.zeros(1)), ("a", 1)]),
        "floats": [float("inf"), float("nan"), -0.0, 0.1],
        "big": 2**70,
        "dtype": gradcore.float16,
        "device": gradcore.device("cpu"),
        "size": gradcore.Size([2, 3]),
    }
    loaded = round_trip(obj)
    assert list(loaded) == list(obj)
    assert loaded[0] == [1, 2.5, -3, True, None, "text", (4, (5.0,))]
    assert [type(v) for v in loaded[0]] == [int, float, int, bool, type(None), str, tuple]
    assert isinstance(loaded["ordered"], OrderedDict) and list(loaded["ordered"]) == ["b", "a"]
    floats = loaded["floats"]
    assert (
        floats[0] == float("inf") and floats[1] != floats[1] and str(floats[2]) == "-0.0" and floats[3] == 0.1
    )
    assert loaded["big"] == 2**70
    assert loaded["dtype"] is gradcore.float16 and loaded["device"] == gradcore.device("cpu")
    assert isinstance(loaded["size"], gradcore.Size) and loaded["size"] == (2, 3)


def test_a_tensor_saved_twice_loads_as_one_tensor():
    shared = gradcore.ones(3)
    loaded = round_trip({"a": shared, "b": [shared]})
    assert loaded["a"] is loaded["b"][0]


def test_paths_and_file_objects(tmp_path):
    tensor = gradcore.arange(6, dtype=gradcore.int32)
    path = tmp_path / "checkpoint.pt"
    gradcore.save(tensor, path)
    assert_bitwise_equal(gradcore.load(path), tensor)
    gradcore.save(tensor, str(path))
    assert_bitwise_equal(gradcore.load(str(path)), tensor)
    with open(path, "rb") as handle:
        assert_bitwise_equal(gradcore.load(handle), tensor)
    assert zipfile.is_zipfile(path)


def test_optimizer_state_dict_round_trip():
    param = gradcore.tensor([1.0, -2.0], requires_grad=True)
    optimizer = gradcore.optim.Adam([param], lr=0.01, amsgrad=True)
    for _ in range(3):
        optimizer.zero_grad()
        (param**2).sum().backward()
        optimizer.step()
    state_dict = optimizer.state_dict()
    loaded = round_trip(state_dict)
    assert loaded["param_groups"] == state_dict["param_groups"]
    assert isinstance(loaded["param_groups"][0]["betas"], tuple)
    assert list(loaded["state"]) == [0]
    for key, value in state_dict["state"][0].items():
        assert_bitwise_equal(loaded["state"][0][key], value)


def test_module_state_dict_round_trip_reproduces_outputs():
    from gradcore import nn
    gradcore.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = gradcore.randn(5, 4)
    state_dict = model.state_dict()
    loaded = round_trip({"model": state_dict, "weight": model[0].weight})
    assert isinstance(loaded["model"], OrderedDict) and list(loaded["model"]) == list(state_dict)
    for key, value in state_dict.items():
        assert_bitwise_equal(loaded["model"][key], value)
    assert isinstance(loaded["weight"], nn.Parameter) and loaded["weight"].requires_grad
    copy = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    copy.load_state_dict(loaded["model"])
    assert copy(x).detach().numpy().tobytes() == model(x).detach().numpy().tobytes()


def test_unsupported_objects_are_refused_when_saving():
    with pytest.raises(TypeError, match="cannot save an object of type"):
        gradcore.save({"f": lambda: 0}, io.BytesIO())
    with pytest.raises(TypeError, match="cannot save"):
        gradcore.save(np.ones(2), io.BytesIO())


# -- map_location and CUDA checkpoints ----------------------------------------------------------------------
def rewrite_manifest(buffer, change):
    """Returns a copy of the checkpoint in ``buffer`` whose manifest went through ``change(manifest_dict)``."""
    buffer.seek(0)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "manifest.json":
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            target.writestr(name, data)
    out.seek(0)
    return out


def cuda_checkpoint():
    """A checkpoint that says its tensors were on cuda:0, made without a GPU."""
    buffer = io.BytesIO()
    gradcore.save({"weight": gradcore.arange(4, dtype=gradcore.float32), "step": 3}, buffer)

    def to_cuda(manifest):
        for key, value in manifest["root"]["items"]:
            if value["type"] == "tensor":
                value["device"] = "cuda:0"

    return rewrite_manifest(buffer, to_cuda)


@pytest.mark.parametrize(
    "map_location",
    [
        "cpu",
        gradcore.device("cpu"),
        {"cuda:0": "cpu"},
        lambda storage, location: storage,
    ],
    ids=["str", "device", "dict", "callable"],
)
def test_cuda_checkpoint_loads_on_the_cpu_with_map_location(map_location):
    loaded = gradcore.load(cuda_checkpoint(), map_location=map_location)
    assert loaded["weight"].device == gradcore.device("cpu")
    assert loaded["weight"].tolist() == [0.0, 1.0, 2.0, 3.0] and loaded["step"] == 3


def test_map_location_callable_sees_the_saved_location():
    seen = []
    gradcore.load(cuda_checkpoint(), map_location=lambda storage, location: seen.append(location) or storage)
    assert seen == ["cuda:0"]


def test_cuda_checkpoint_without_cuda_asks_for_map_location():
    if gradcore.cuda.is_available():
        pytest.skip("checks the message on a machine without CUDA")
    with pytest.raises(RuntimeError, match="Attempting to deserialize object on a CUDA device.*map_location"):
        gradcore.load(cuda_checkpoint())
    with pytest.raises(RuntimeError, match="map_location"):
        gradcore.load(round_trip_buffer(gradcore.ones(1)), map_location="cuda")


def round_trip_buffer(obj):
    buffer = io.BytesIO()
    gradcore.save(obj, buffer)
    buffer.seek(0)
    return buffer


def test_cuda_tensors_round_trip_and_map_to_the_cpu():
    if not gradcore.cuda.is_available():
        pytest.skip("needs CUDA")
    check_cuda_round_trip()


def test_cuda_tensors_round_trip_on_the_cupy_test_double(fake_cuda):
    check_cuda_round_trip()


def check_cuda_round_trip():
    tensor = gradcore.arange(5, dtype=gradcore.float16, device="cpu").cuda()
    buffer = round_trip_buffer({"w": tensor})
    with zipfile.ZipFile(buffer) as archive:
        assert json.loads(archive.read("manifest.json"))["root"]["items"][0][1]["device"] == "cuda:0"
    buffer.seek(0)
    loaded = gradcore.load(buffer)["w"]
    assert loaded.is_cuda and loaded.cpu().numpy().tobytes() == tensor.cpu().numpy().tobytes()
    on_cpu = round_trip(tensor, map_location="cpu")
    assert on_cpu.device == gradcore.device("cpu") and on_cpu.tolist() == tensor.cpu().tolist()
    assert gradcore.load(round_trip_buffer(gradcore.ones(2, device="cpu")), map_location="cuda:0").is_cuda
    with pytest.raises(RuntimeError, match="CUDA device 5 but gradcore.cuda.device_count"):
        gradcore.load(round_trip_buffer(gradcore.ones(2, device="cpu")), map_location="cuda:5")


# -- files that must be refused -------------------------------------------------------------------------------
class CreatesMarker:
    """Unpickling this would create a file: loading must never do it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(CreatesMarker(str(marker))))
    with pytest.raises(RuntimeError, match="evil.pt.*not a valid gradcore checkpoint.*pickle"):
        gradcore.load(path)
    with pytest.raises(RuntimeError):
        gradcore.load(path, weights_only=False)
    assert not marker.exists()


def test_a_pickled_array_inside_the_archive_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "marker"
    buffer = round_trip_buffer({"w": gradcore.ones(2)})
    malicious = io.BytesIO()
    np.save(malicious, np.array([CreatesMarker(str(marker))], dtype=object), allow_pickle=True)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, malicious.getvalue() if name.endswith(".npy") else source.read(name))
    out.seek(0)
    with pytest.raises(RuntimeError, match="cannot be read"):
        gradcore.load(out)
    assert not marker.exists()


def test_random_bytes_and_truncated_files_are_refused(tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(os.urandom(1000))
    with pytest.raises(RuntimeError, match="noise.bin.*not a valid gradcore checkpoint"):
        gradcore.load(path)
    good = round_trip_buffer({"w": gradcore.ones(100)}).getvalue()
    with pytest.raises(RuntimeError, match="not a valid gradcore checkpoint"):
        gradcore.load(io.BytesIO(good[: len(good) // 2]))
    with pytest.raises(RuntimeError, match="not a valid gradcore checkpoint"):
        gradcore.load(io.BytesIO(b""))


def test_a_zip_without_our_manifest_is_refused(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x04K\x01.")
    with pytest.raises(RuntimeError, match="other.zip.*no manifest.json.*PyTorch"):
        gradcore.load(path)


def test_a_torch_checkpoint_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "torch.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match="no manifest.json"):
        gradcore.load(path)


def broken(change):
    return rewrite_manifest(round_trip_buffer({"w": gradcore.ones(2), "n": 1}), change)


def set_tensor_field(key, value):
    def change(manifest):
        manifest["root"]["items"][0][1][key] = value

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m["root"].update(type="python_object"), "unknown entry type 'python_object'"),
        (
            lambda m: m["root"]["items"][1][1].update(type="eval", value="__import__('os')"),
            "unknown entry type 'eval'",
        ),
        (lambda m: m.update(format="something else"), "does not describe a gradcore file"),
        (lambda m: m.update(version=99), "version 99"),
        (lambda m: m.pop("root"), "does not describe"),
        (set_tensor_field("dtype", "complex128"), "unknown dtype 'complex128'"),
        (set_tensor_field("dtype", "float64"), "described as float64"),
        (set_tensor_field("shape", [3]), r"described as float32 \[3\]"),
        (set_tensor_field("id", 7), "tensors/7.npy.*missing"),
        (set_tensor_field("device", "tpu:0"), "unknown device 'tpu:0'"),
        (set_tensor_field("requires_grad", "yes"), "requires_grad"),
        (lambda m: m["root"].update(items=[["w"]]), r"\[key, value\] pair"),
        (lambda m: m["root"].update(type="ref", id=0), "before it is defined"),
    ],
)
def test_a_malformed_manifest_is_refused(change, message):
    with pytest.raises(RuntimeError, match=message):
        gradcore.load(broken(change))


def test_a_manifest_that_is_not_json_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("manifest.json", b"{not json")
    out.seek(0)
    with pytest.raises(RuntimeError, match="not valid JSON"):
        gradcore.load(out)


# -- atomic saves -------------------------------------------------------------------------------------------
def test_a_failed_save_leaves_the_existing_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    gradcore.save({"w": gradcore.arange(4.0)}, path)
    before = path.read_bytes()
    # An object that cannot be saved is found before anything is written.
    with pytest.raises(TypeError, match="cannot save an object of type"):
        gradcore.save({"w": gradcore.ones(3), "later": object()}, path)
    assert path.read_bytes() == before
    # A failure in the middle of writing (a full disk, say) leaves the old file and no temporary file.
    calls = []

    def failing_write(*args, **kwargs):
        calls.append(1)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(OSError, match="No space left"):
        gradcore.save({"w": gradcore.ones(3)}, path)
    monkeypatch.undo()
    assert calls and path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    gradcore.save({"w": gradcore.ones(2)}, path)
    assert gradcore.load(path)["w"].tolist() == [1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


# -- a hardened loader --------------------------------------------------------------------------------------
def saved_bytes(obj):
    buffer = io.BytesIO()
    gradcore.save(obj, buffer)
    return buffer.getvalue()


def rewrite_archive(data, change):
    """Rebuilds an archive, passing each (ZipInfo, bytes) through ``change`` (which returns them, maybe new)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            info, content = change(info, source.read(info))
            target.writestr(info, content)
    return out.getvalue()


def load_bytes(data):
    return gradcore.load(io.BytesIO(data))


def test_compressed_members_are_refused():
    data = saved_bytes({"w": gradcore.zeros(100)})

    def compress(info, content):
        info.compress_type = zipfile.ZIP_DEFLATED
        return info, content

    with pytest.raises(RuntimeError, match="is compressed, and gradcore writes no compressed members"):
        load_bytes(rewrite_archive(data, compress))


def test_a_manifest_over_the_limit_is_refused(monkeypatch):
    data = saved_bytes({f"w{i}": gradcore.zeros(1) for i in range(50)})
    monkeypatch.setattr(gradcore.serialization, "MAX_MANIFEST_BYTES", 1000)
    with pytest.raises(RuntimeError, match="manifest.json has .* bytes, more than the 1000 allowed"):
        load_bytes(data)


def test_declared_sizes_are_checked_before_allocating():
    data = saved_bytes({"w": gradcore.zeros(4)})
    huge = [1 << 20, 1 << 20, 1 << 10]  # 4 TiB of float32

    def claim_huge(info, content):
        if info.filename == "manifest.json":
            manifest = json.loads(content)
            manifest["root"]["items"][0][1]["shape"] = huge
            content = json.dumps(manifest).encode()
        elif info.filename.endswith(".npy"):
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                          "shape": tuple(huge)})
            content = header.getvalue() + content[-16:]
        return info, content

    with pytest.raises(RuntimeError, match="holds 16 bytes, not the 4503599627370496 that"):
        load_bytes(rewrite_archive(data, claim_huge))


def test_a_member_larger_than_the_archive_is_refused():
    data = bytearray(saved_bytes({"w": gradcore.zeros(4)}))
    # The central directory's uncompressed and compressed sizes of the first member, made enormous.
    central = data.rfind(b"PK\x01\x02")
    first = data.find(b"PK\x01\x02")
    assert first != -1 and central != -1
    data[first + 20:first + 28] = (1 << 31).to_bytes(4, "little") * 2
    with pytest.raises(RuntimeError, match="not a valid gradcore checkpoint"):
        load_bytes(bytes(data))


def fuzz_object():
    gradcore.manual_seed(0)
    base = gradcore.randn(6, 4)
    return OrderedDict(weight=gradcore.randn(5, 3), bias=gradcore.arange(7), flags=gradcore.tensor([True, False]),
                       nested={"lr": 0.125, "steps": [1, 2, 3], "name": "adam"}, base=base, row=base[2],
                       column=base[:, 1])


def same(loaded, original):
    if isinstance(original, gradcore.Tensor):
        return (isinstance(loaded, gradcore.Tensor) and loaded.dtype is original.dtype
                and loaded.shape == original.shape
                and loaded.numpy().tobytes() == np.ascontiguousarray(original.numpy()).tobytes())
    if isinstance(original, dict):
        return (isinstance(loaded, dict) and list(loaded) == list(original)
                and all(same(loaded[k], v) for k, v in original.items()))
    if isinstance(original, (list, tuple)):
        return type(loaded) is type(original) and len(loaded) == len(original) and all(
            same(a, b) for a, b in zip(loaded, original))
    return type(loaded) is type(original) and loaded == original


def test_bit_flips_and_truncations_raise_runtime_error_or_load_unchanged():
    original = fuzz_object()
    data = saved_bytes(original)
    assert same(load_bytes(data), original)
    rng = np.random.default_rng(2024)
    unchanged = 0
    positions = list(range(len(data))) if len(data) <= 4000 else rng.choice(len(data), 4000, replace=False)
    for position in positions:
        corrupt = bytearray(data)
        corrupt[position] ^= 1 << int(rng.integers(8))
        try:
            loaded = load_bytes(bytes(corrupt))
        except RuntimeError:
            continue
        # A flip the format does not read (a timestamp, a version-made-by byte) may load: then unchanged.
        assert same(loaded, original), f"a flip at byte {position} loaded different values"
        unchanged += 1
    assert unchanged < len(positions) // 4
    for length in range(len(data)):
        with pytest.raises(RuntimeError):
            load_bytes(data[:length])


# -- views that share storage ---------------------------------------------------------------------------------
def test_views_that_shared_storage_share_it_when_loaded():
    # CPU tensors here; the views of CUDA tensors are tested below.
    base = gradcore.arange(12.0, device="cpu").reshape(3, 4)
    views = {"base": base, "row": base[1], "column": base[:, 2], "flat": base.reshape(-1), "alone": gradcore.ones(2)}
    loaded = round_trip(views, map_location="cpu")
    for key, value in views.items():
        assert loaded[key].tolist() == value.tolist()
    loaded["base"].add_(100)
    assert loaded["row"].tolist() == [104.0, 105.0, 106.0, 107.0]
    assert loaded["column"].tolist() == [102.0, 106.0, 110.0]
    assert loaded["flat"][0].item() == 100.0
    assert loaded["alone"].tolist() == [1.0, 1.0]
    # Without shared memory the file is written as before, in version 1.
    archive = zipfile.ZipFile(io.BytesIO(saved_bytes({"a": gradcore.ones(2), "b": gradcore.ones(2)})))
    assert json.loads(archive.read("manifest.json"))["version"] == 1


def shared_views(device):
    base = gradcore.arange(12.0, device=device).reshape(3, 4)
    return {"base": base, "row": base[1], "column": base[:, 2], "flipped": base.t()[1:3],
            "alone": gradcore.ones(2, device=device)}


def check_views_share_after_load(loaded, saved, device):
    """After load the views of one storage see each other's in-place changes, as PyTorch's loaded views do
    (checked against torch.save and torch.load of the same views on the CPU)."""
    torch = pytest.importorskip("torch")
    torch_base = torch.arange(12.0).reshape(3, 4)
    torch_saved = {"base": torch_base, "row": torch_base[1], "column": torch_base[:, 2],
                   "flipped": torch_base.t()[1:3], "alone": torch.ones(2)}
    buffer = io.BytesIO()
    torch.save(torch_saved, buffer)
    buffer.seek(0)
    torch_loaded = torch.load(buffer)
    for key in saved:
        assert loaded[key].device == gradcore.device(device), key
        assert loaded[key].tolist() == saved[key].tolist() == torch_loaded[key].tolist(), key
    for name, change in [("row", lambda t: t.mul_(-1)), ("base", lambda t: t.add_(100)),
                         ("column", lambda t: t.sub_(0.5)), ("flipped", lambda t: t.fill_(7))]:
        change(loaded[name])
        change(torch_loaded[name])
        for key in saved:
            assert loaded[key].tolist() == torch_loaded[key].tolist(), (name, key)
    assert saved["base"].tolist() == torch.arange(12.0).reshape(3, 4).tolist()  # the saved tensors are untouched


def test_views_of_cuda_tensors_share_storage_when_loaded(fake_cuda):
    saved = shared_views("cuda")
    loaded = round_trip(saved)
    check_views_share_after_load(loaded, saved, "cuda:0")
    # Saved again, they keep their values (written as one storage or as copies: CuPy's strided views do not
    # name the array they view).
    again = round_trip(loaded)
    for key in saved:
        assert again[key].tolist() == loaded[key].tolist()


def test_views_loaded_on_the_cpu_stay_one_storage_when_saved_again():
    loaded = round_trip(shared_views("cpu"), map_location="cpu")
    buffer = round_trip_buffer(loaded)
    with zipfile.ZipFile(buffer) as archive:
        assert sorted(archive.namelist()) == ["manifest.json", "storages/0.npy", "tensors/4.npy"]
    buffer.seek(0)
    again = gradcore.load(buffer, map_location="cpu")
    again["base"].zero_()
    assert again["row"].tolist() == [0.0] * 4 and again["flipped"].tolist() == [[0.0] * 3] * 2


@pytest.mark.parametrize("map_location", ["cpu", {"cuda:0": "cpu"}], ids=["cpu", "dict"])
def test_views_of_cuda_tensors_mapped_to_the_cpu_share_storage(fake_cuda, map_location):
    saved = shared_views("cuda")
    check_views_share_after_load(round_trip(saved, map_location=map_location), saved, "cpu")


def test_views_of_cpu_tensors_mapped_to_cuda_share_storage(fake_cuda):
    saved = shared_views("cpu")
    check_views_share_after_load(round_trip(saved, map_location="cuda:0"), saved, "cuda:0")


def test_a_view_reaching_outside_its_storage_is_refused():
    base = gradcore.arange(8.0, device="cpu")
    data = saved_bytes({"base": base, "tail": base[4:]})

    def stretch(info, content):
        if info.filename == "manifest.json":
            manifest = json.loads(content)
            manifest["root"]["items"][1][1]["offset"] = 6
            manifest["root"]["items"][1][1]["strides"] = [3]
            content = json.dumps(manifest).encode()
        return info, content

    assert round_trip({"base": base, "tail": base[4:]})["tail"].tolist() == [4.0, 5.0, 6.0, 7.0]
    with pytest.raises(RuntimeError, match="reaches elements 6 to 15 of storage 0, which has 8"):
        load_bytes(rewrite_archive(data, stretch))


# -- safetensors ----------------------------------------------------------------------------------------------
def test_safetensors_round_trip_with_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from gradcore.serialization import load_safetensors, save_safetensors

    gradcore.manual_seed(1)
    model = gradcore.nn.Sequential(gradcore.nn.Linear(4, 8), gradcore.nn.LayerNorm(8), gradcore.nn.ReLU(),
                                   gradcore.nn.Linear(8, 2), gradcore.nn.BatchNorm1d(2))
    model.state_dict()["4.running_mean"].add_(0.5)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    path = tmp_path / "model.safetensors"
    save_safetensors(model.state_dict(), path, metadata={"format": "pt"})

    torch_model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.ReLU(),
                                      torch.nn.Linear(8, 2), torch.nn.BatchNorm1d(2))
    torch_model.load_state_dict(safetensors_torch.load_file(str(path)))
    torch_model.eval()
    model.eval()
    np.testing.assert_allclose(torch_model(torch.tensor(x)).detach().numpy(),
                               model(gradcore.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)

    with torch.no_grad():
        for p in torch_model.parameters():
            p.mul_(-2)
    back = tmp_path / "back.safetensors"
    safetensors_torch.save_file(torch_model.state_dict(), str(back))
    loaded = load_safetensors(back)
    assert sorted(loaded) == sorted(torch_model.state_dict())
    assert loaded["4.num_batches_tracked"].dtype == gradcore.int64 and loaded["4.num_batches_tracked"].shape == ()
    model.load_state_dict(loaded)
    np.testing.assert_allclose(model(gradcore.tensor(x)).detach().numpy(),
                               torch_model(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_safetensors_errors(tmp_path):
    pytest.importorskip("safetensors")
    from gradcore.serialization import load_safetensors, save_safetensors

    path = tmp_path / "w.safetensors"
    with pytest.raises(TypeError, match="not a Tensor"):
        save_safetensors({"w": [1.0]}, path)
    with pytest.raises(TypeError, match="keys must be strings"):
        save_safetensors({1: gradcore.ones(1)}, path)
    assert not path.exists() and list(tmp_path.iterdir()) == []
    save_safetensors({"w": gradcore.ones(3)}, path)
    data = path.read_bytes()
    (tmp_path / "bad.safetensors").write_bytes(data[:20])
    with pytest.raises(RuntimeError, match="not a valid safetensors file"):
        load_safetensors(tmp_path / "bad.safetensors")
    # Tensors that share memory are written as copies and load as independent tensors.
    base = gradcore.arange(4.0)
    save_safetensors({"a": base, "b": base[1:3]}, path)
    loaded = load_safetensors(path)
    assert loaded["b"].tolist() == [1.0, 2.0] and loaded["a"].tolist() == [0.0, 1.0, 2.0, 3.0]
