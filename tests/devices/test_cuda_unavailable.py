"""gradcore.cuda and CUDA tensors where CUDA cannot be used: checked for real, not through the test double.

Two cases: CuPy absent (checked in a fresh interpreter where ``import cupy`` fails), and CuPy installed on a
machine without a GPU or driver (checked in this process when CuPy is installed and no GPU is visible; the
test extra installs CuPy so that CI runs it).
"""
import json
import subprocess
import sys
import textwrap

import pytest

import gradcore
from gradcore.backend import cuda as cuda_backend

PIP_HINT = 'pip install "gradcore[cuda]"'

# Runs in a fresh interpreter in which ``import cupy`` raises ImportError, and reports what each call did.
WITHOUT_CUPY = textwrap.dedent("""
    import json, sys
    sys.modules["cupy"] = None  # makes ``import cupy`` raise ImportError
    import gradcore

    def outcome(call):
        try:
            value = call()
        except Exception as exc:
            return {"raised": type(exc).__name__, "message": str(exc)}
        return {"returned": repr(value)}

    x = gradcore.ones(2)
    print(json.dumps({
        "is_available": outcome(gradcore.cuda.is_available),
        "device_count": outcome(gradcore.cuda.device_count),
        "memory_allocated": outcome(gradcore.cuda.memory_allocated),
        "manual_seed": outcome(lambda: gradcore.cuda.manual_seed(1)),
        "manual_seed_all": outcome(lambda: gradcore.cuda.manual_seed_all(1)),
        "empty_cache": outcome(gradcore.cuda.empty_cache),
        "global_manual_seed": outcome(lambda: gradcore.manual_seed(3).initial_seed()),
        "current_device": outcome(gradcore.cuda.current_device),
        "synchronize": outcome(gradcore.cuda.synchronize),
        "cuda": outcome(x.cuda),
        "to": outcome(lambda: x.to("cuda")),
        "tensor": outcome(lambda: gradcore.tensor([1.0], device="cuda")),
        "zeros": outcome(lambda: gradcore.zeros(2, device="cuda:0")),
        "cpu": outcome(lambda: x.cpu() is x),
    }))
""")


@pytest.fixture(scope="module")
def without_cupy():
    result = subprocess.run([sys.executable, "-c", WITHOUT_CUPY], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_queries_answer_without_raising_when_cupy_is_absent(without_cupy):
    assert without_cupy["is_available"] == {"returned": "False"}
    assert without_cupy["device_count"] == {"returned": "0"}
    assert without_cupy["memory_allocated"] == {"returned": "0"}
    for name in ("manual_seed", "manual_seed_all", "empty_cache"):
        assert without_cupy[name] == {"returned": "None"}, name
    assert without_cupy["global_manual_seed"] == {"returned": "3"}
    assert without_cupy["cpu"] == {"returned": "True"}


@pytest.mark.parametrize("call", ["cuda", "to", "tensor", "zeros", "current_device", "synchronize"])
def test_cuda_tensors_without_cupy_raise_naming_cupy_and_the_install_command(without_cupy, call):
    outcome = without_cupy[call]
    assert outcome.get("raised") == "RuntimeError", outcome
    assert "CuPy is not installed" in outcome["message"]
    assert PIP_HINT in outcome["message"]


needs_cupy_without_gpu = pytest.mark.skipif(
    cuda_backend._load_cupy() is None or gradcore.cuda.is_available(),
    reason="needs CuPy installed on a machine without a usable GPU (the test extra installs CuPy)",
)


@needs_cupy_without_gpu
def test_cupy_without_gpu_is_unavailable_and_never_raises():
    assert gradcore.cuda.is_available() is False
    assert gradcore.cuda.device_count() == 0
    assert gradcore.cuda.memory_allocated() == 0
    gradcore.cuda.manual_seed(1)
    gradcore.cuda.manual_seed_all(1)
    gradcore.cuda.empty_cache()
    assert gradcore.manual_seed(5).initial_seed() == 5


@needs_cupy_without_gpu
@pytest.mark.parametrize("make", [
    lambda: gradcore.ones(2).cuda(),
    lambda: gradcore.ones(2).to("cuda"),
    lambda: gradcore.ones(2).to(0),
    lambda: gradcore.tensor([1.0], device="cuda"),
    lambda: gradcore.randn(3, device="cuda"),
    lambda: gradcore.cuda.current_device(),
    lambda: gradcore.cuda.synchronize(),
], ids=["cuda", "to", "to_index", "tensor", "randn", "current_device", "synchronize"])
def test_cuda_tensors_with_cupy_but_no_gpu_raise_saying_the_gpu_is_missing(make):
    with pytest.raises(RuntimeError) as info:
        make()
    message = str(info.value)
    assert "is installed, but no CUDA GPU is usable" in message
    assert "NVIDIA GPU with its driver" in message
    assert "CuPy is not installed" not in message


def test_cuda_rejects_a_cpu_device():
    with pytest.raises(RuntimeError, match="Invalid device, must be cuda device"):
        gradcore.ones(1).cuda("cpu")
