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
