"""Layers, activations and losses of gradcore.nn against PyTorch: same weights, same data, same outputs and grads.

Every case runs in float64 (agreement to ~1e-10) and float32 (~1e-6); losses run with every reduction.
"""
import numpy as np
import pytest

import gradcore
import gradcore.nn as nn
import gradcore.nn.functional as F

torch = pytest.importorskip("torch")

TOLERANCES = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}
DTYPES = ["float64", "float32"]
REDUCTIONS = ["none", "mean", "sum"]


def pair(array, requires_grad=True):
    """The same numpy data as a gradcore and a torch tensor."""
    return (gradcore.tensor(array, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


def assert_close(ours, theirs, dtype):
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), **TOLERANCES[dtype])


def backward_both(ours, theirs, seed=0):
    """Back-propagates the same random upstream gradient through both outputs."""
    upstream = np.random.default_rng(seed).standard_normal(tuple(theirs.shape)).astype(str(theirs.dtype).split(".")[-1])
    ours.backward(gradcore.tensor(upstream))
    theirs.backward(torch.tensor(upstream))


def copy_parameters(ours, theirs):
    """Copies torch module parameters into the gradcore module (same names, same order)."""
    their_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        with gradcore.no_grad():
            param.copy_(gradcore.tensor(their_params[name].detach().numpy()))


# -- layers -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("input_shape", [(5, 4), (4,), (2, 3, 4)])
def test_linear_output_and_gradients(dtype, bias, input_shape):
    rng = np.random.default_rng(1)
    ours = nn.Linear(4, 3, bias=bias, dtype=getattr(gradcore, dtype))
    theirs = torch.nn.Linear(4, 3, bias=bias, dtype=getattr(torch, dtype))
    copy_parameters(ours, theirs)
    x, tx = pair(rng.standard_normal(input_shape).astype(dtype))
    out, tout = ours(x), theirs(tx)
    assert_close(out, tout, dtype)
    backward_both(out, tout)
    assert_close(x.grad, tx.grad, dtype)
    assert_close(ours.weight.grad, theirs.weight.grad, dtype)
    if bias:
        assert_close(ours.bias.grad, theirs.bias.grad, dtype)
    else:
        assert ours.bias is None


def test_linear_default_initialisation_draws_what_pytorch_draws():
    # The CPU generators agree, and Linear draws weight then bias from the same distributions.
    gradcore.manual_seed(7)
    torch.manual_seed(7)
    ours, theirs = nn.Linear(6, 4), torch.nn.Linear(6, 4)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(ours.bias.detach().numpy(), theirs.bias.detach().numpy(), rtol=0, atol=1e-7)
    gradcore.manual_seed(7)
    torch.manual_seed(7)
    ours = nn.Linear(6, 4, dtype=gradcore.float64)
    theirs = torch.nn.Linear(6, 4, dtype=torch.float64)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=0, atol=1e-15)


ACTIVATIONS = [
    ("ReLU", {}, lambda m: m.ReLU()),
    ("Sigmoid", {}, lambda m: m.Sigmoid()),
    ("Tanh", {}, lambda m: m.Tanh()),
    ("LeakyReLU", {}, lambda m: m.LeakyReLU()),
    ("LeakyReLU(0.2)", {}, lambda m: m.LeakyReLU(0.2)),
    ("GELU", {}, lambda m: m.GELU()),
    ("GELU(tanh)", {}, lambda m: m.GELU(approximate="tanh")),
    ("Softmax(1)", {}, lambda m: m.Softmax(dim=1)),
    ("Softmax(-1)", {}, lambda m: m.Softmax(dim=-1)),
    ("LogSoftmax(1)", {}, lambda m: m.LogSoftmax(dim=1)),
    ("Flatten", {}, lambda m: m.Flatten()),
    ("Flatten(0)", {}, lambda m: m.Flatten(0, 1)),
    ("Identity", {}, lambda m: m.Identity()),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,_,make", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_layers(name, _, make, dtype):
    rng = np.random.default_rng(2)
    data = (rng.standard_normal((4, 3, 2)) * 3).astype(dtype)
    data[0, 0, 0] = 0.0  # the kink of relu / leaky_relu: both take the same one-sided derivative
    x, tx = pair(data)
    out, tout = make(nn)(x), make(torch.nn)(tx)
    assert_close(out, tout, dtype)
    backward_both(out, tout)
    assert_close(x.grad, tx.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_over_a_wide_range(dtype, approximate):
    data = np.concatenate([np.linspace(-12, 12, 481), [-1e4, -50.0, 50.0, 1e4]]).astype(dtype)
    # The reference is PyTorch in float64: in float32 PyTorch's tanh form rounds to 0 around x = -5, where
    # gradcore keeps the (tiny) true values.
    x, tx = gradcore.tensor(data, requires_grad=True), torch.tensor(data.astype("float64"), requires_grad=True)
    out = F.gelu(x, approximate=approximate)
    tout = torch.nn.functional.gelu(tx, approximate=approximate)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), **TOLERANCES[dtype])
    out.backward(gradcore.ones_like(out))
    tout.backward(torch.ones_like(tout))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **TOLERANCES[dtype])
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_activations(dtype):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((3, 5)).astype(dtype)
    for name, args in [("relu", ()), ("sigmoid", ()), ("tanh", ()), ("leaky_relu", (0.3,)), ("gelu", ()),
                       ("softmax", (0,)), ("log_softmax", (1,))]:
        x, tx = pair(data)
        out = getattr(F, name)(x, *args)
        tout = getattr(torch.nn.functional, name)(tx, *args)
        assert_close(out, tout, dtype)
        backward_both(out, tout)
        assert_close(x.grad, tx.grad, dtype)


def test_inplace_activations_change_their_input():
    for ours, theirs in [(nn.ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
                         (nn.LeakyReLU(0.1, inplace=True), torch.nn.LeakyReLU(0.1, inplace=True))]:
        data = np.array([-2.0, -0.5, 0.0, 1.5])
        x, tx = gradcore.tensor(data), torch.tensor(data)
        out, tout = ours(x), theirs(tx)
        np.testing.assert_array_equal(x.numpy(), tx.numpy())
        np.testing.assert_array_equal(out.numpy(), tout.numpy())
        # Through a non-leaf, the in-place form still differentiates correctly.
        w, tw = pair(data)
        y, ty = ours(w * 2.0), theirs(tw * 2.0)
        y.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_mlp_against_torch(dtype):
    rng = np.random.default_rng(4)
    ours = nn.Sequential(nn.Linear(5, 8), nn.GELU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3), nn.LogSoftmax(1))
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.GELU(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
                                 torch.nn.Linear(8, 3), torch.nn.LogSoftmax(1))
    ours.to(getattr(gradcore, dtype))
    theirs.to(getattr(torch, dtype))
    copy_parameters(ours, theirs)
    x, tx = pair(rng.standard_normal((6, 5)).astype(dtype), requires_grad=False)
    target = rng.integers(0, 3, size=6)
    loss = F.nll_loss(ours(x), gradcore.tensor(target))
    tloss = torch.nn.functional.nll_loss(theirs(tx), torch.tensor(target))
    assert_close(loss, tloss, dtype)
    loss.backward()
    tloss.backward()
    their_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert_close(param.grad, their_params[name].grad, dtype)


# -- losses -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["MSELoss", "L1Loss"])
def test_regression_losses(name, reduction, dtype):
    rng = np.random.default_rng(5)
    x, tx = pair(rng.standard_normal((4, 3)).astype(dtype))
    y, ty = pair(rng.standard_normal((4, 3)).astype(dtype))
    out = getattr(nn, name)(reduction=reduction)(x, y)
    tout = getattr(torch.nn, name)(reduction=reduction)(tx, ty)
    assert_close(out, tout, dtype)
    backward_both(out, tout)
    assert_close(x.grad, tx.grad, dtype)
    assert_close(y.grad, ty.grad, dtype)


def class_data(dtype, shape=(6, 4), seed=6, ignore=None):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal(shape) * 2).astype(dtype)
    target_shape = (shape[0],) + tuple(shape[2:])
    target = rng.integers(0, shape[1], size=target_shape)
    if ignore is not None:
        target.reshape(-1)[::3] = ignore
    weight = rng.uniform(0.5, 2.0, size=shape[1]).astype(dtype)
    return logits, target, weight


CE_CASES = [
    dict(),
    dict(weight=True),
    dict(ignore_index=1),
    dict(ignore_index=-100, ignore=-100),
    dict(weight=True, ignore_index=2, ignore=2),
    dict(label_smoothing=0.1),
    dict(label_smoothing=0.25, weight=True),
    dict(label_smoothing=0.2, weight=True, ignore_index=3, ignore=3),
    dict(shape=(3, 4, 5)),
    dict(shape=(2, 3, 2, 2), weight=True, label_smoothing=0.3),
]


# NLLLoss has no label smoothing: its cases are the others, and the next test checks that the option is refused.
CLASS_INDEX_CASES = [("CrossEntropyLoss", case) for case in CE_CASES] + [
    ("NLLLoss", case) for case in CE_CASES if "label_smoothing" not in case]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,case", CLASS_INDEX_CASES, ids=[f"{name}-{case}" for name, case in CLASS_INDEX_CASES])
def test_class_index_losses(name, case, reduction, dtype):
    case = dict(case)
    logits, target, weight = class_data(dtype, case.pop("shape", (6, 4)), ignore=case.pop("ignore", None))
    if name == "NLLLoss":
        logits = torch.log_softmax(torch.tensor(logits), 1).numpy()
    kwargs = dict(case, reduction=reduction)
    our_kwargs, their_kwargs = dict(kwargs), dict(kwargs)
    if kwargs.pop("weight", False):
        our_kwargs["weight"], their_kwargs["weight"] = gradcore.tensor(weight), torch.tensor(weight)
    x, tx = pair(logits)
    out = getattr(nn, name)(**our_kwargs)(x, gradcore.tensor(target))
    tout = getattr(torch.nn, name)(**their_kwargs)(tx, torch.tensor(target))
    assert_close(out, tout, dtype)
    backward_both(out, tout)
    assert_close(x.grad, tx.grad, dtype)


@pytest.mark.parametrize("call", [
    pytest.param(lambda lib: lib.nn.NLLLoss(label_smoothing=0.1), id="module"),
    pytest.param(lambda lib: lib.nn.functional.nll_loss(lib.zeros(2, 3), lib.tensor([0, 1]), label_smoothing=0.1),
                 id="functional"),
])
def test_nll_loss_rejects_label_smoothing_as_pytorch_does(call):
    with pytest.raises(TypeError) as theirs:
        call(torch)
    with pytest.raises(TypeError) as ours:
        call(gradcore)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_single_sample_and_probability_targets(reduction):
    rng = np.random.default_rng(7)
    # One unbatched sample: (C,) logits and a 0-d target.
    x, tx = pair(rng.standard_normal(5))
    out = F.cross_entropy(x, gradcore.tensor(3), reduction=reduction)
    tout = torch.nn.functional.cross_entropy(tx, torch.tensor(3), reduction=reduction)
    assert_close(out, tout, "float64")
    # Class probabilities as the target, with weights and smoothing.
    probabilities = rng.dirichlet(np.ones(4), size=5)
    weight = rng.uniform(0.5, 2.0, size=4)
    x, tx = pair(rng.standard_normal((5, 4)))
    y, ty = pair(probabilities)
    out = F.cross_entropy(x, y, weight=gradcore.tensor(weight), reduction=reduction, label_smoothing=0.1)
    tout = torch.nn.functional.cross_entropy(tx, ty, weight=torch.tensor(weight), reduction=reduction,
                                             label_smoothing=0.1)
    assert_close(out, tout, "float64")
    backward_both(out, tout)
    assert_close(x.grad, tx.grad, "float64")
    assert_close(y.grad, ty.grad, "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_loss(weighted, reduction, dtype):
    rng = np.random.default_rng(8)
    p = rng.uniform(0.02, 0.98, size=(5, 3)).astype(dtype)
    p[0, :] = [0.0, 1.0, 0.5]  # the clamped logs: finite loss and finite gradient
    y = rng.uniform(0, 1, size=(5, 3)).astype(dtype)
    y[0, :] = [0.0, 1.0, 1.0]
    w = rng.uniform(0.5, 2, size=(5, 3)).astype(dtype)
    x, tx = pair(p)
    t, tt = pair(y)
    kwargs = dict(weight=gradcore.tensor(w)) if weighted else {}
    tkwargs = dict(weight=torch.tensor(w)) if weighted else {}
    out = nn.BCELoss(reduction=reduction, **kwargs)(x, t)
    tout = torch.nn.BCELoss(reduction=reduction, **tkwargs)(tx, tt)
    assert_close(out, tout, dtype)
    backward_both(out, tout)
    assert_close(x.grad, tx.grad, dtype)
    assert_close(t.grad, tt.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", ["plain", "weight", "pos_weight", "both"])
def test_bce_with_logits_loss(options, reduction, dtype):
    rng = np.random.default_rng(9)
    logits = (rng.standard_normal((4, 3)) * 4).astype(dtype)
    logits[0, :] = [0.0, 1e4, -1e4]  # the kink of |x| and extreme logits
    y = rng.uniform(0, 1, size=(4, 3)).astype(dtype)
    weight = rng.uniform(0.5, 2, size=(4, 3)).astype(dtype)
    pos_weight = rng.uniform(0.5, 3, size=3).astype(dtype)
    x, tx = pair(logits)
    t, tt = pair(y)
    ours_kw, theirs_kw = {}, {}
    if options in ("weight", "both"):
        ours_kw["weight"], theirs_kw["weight"] = gradcore.tensor(weight), torch.tensor(weight)
    if options in ("pos_weight", "both"):
        # PyTorch does not differentiate pos_weight (gradcore does: see the gradcheck tests).
        ours_kw["pos_weight"], theirs_kw["pos_weight"] = pair(pos_weight, requires_grad=False)
    out = nn.BCEWithLogitsLoss(reduction=reduction, **ours_kw)(x, t)
    tout = torch.nn.BCEWithLogitsLoss(reduction=reduction, **theirs_kw)(tx, tt)
    assert_close(out, tout, dtype)
    assert np.isfinite(out.detach().numpy()).all()
    backward_both(out, tout)
    for ours, theirs in [(x, tx), (t, tt)]:
        assert_close(ours.grad, theirs.grad, dtype)


def _graph_names(loss):
    """The loss's node name and the names of the nodes it links to, as PyTorch's autograd graph shows them."""
    return loss.grad_fn.name(), [None if node is None else type(node).__name__
                                 for node, _ in loss.grad_fn.next_functions]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", ["plain", "weight", "pos_weight", "both"])
@pytest.mark.parametrize("target_grad", [False, True], ids=["target", "target_grad"])
def test_bce_losses_are_one_node_named_as_pytorchs(options, reduction, target_grad):
    rng = np.random.default_rng(3)
    logits, y = rng.standard_normal((4, 3)), rng.uniform(0, 1, size=(4, 3))
    weight, pos_weight = rng.uniform(0.5, 2, size=3), rng.uniform(0.5, 3, size=3)
    names = []
    for lib in (gradcore, torch):
        x, t = lib.tensor(logits, requires_grad=True), lib.tensor(y, requires_grad=target_grad)
        kw = {"reduction": reduction}
        if options in ("weight", "both"):
            kw["weight"] = lib.tensor(weight)
        if options in ("pos_weight", "both"):
            kw["pos_weight"] = lib.tensor(pos_weight)
        with_logits = lib.nn.functional.binary_cross_entropy_with_logits(x, t, **kw)
        kw.pop("pos_weight", None)
        probabilities = lib.nn.functional.binary_cross_entropy(x.sigmoid(), t, **kw)
        names.append((_graph_names(with_logits), _graph_names(probabilities)))
    assert names[0] == names[1]


LOSS_CALLS = {  # name -> (inputs as numpy arrays, the call given the library, its functional module and tensors)
    "mse": lambda lib, F, x, y, c: F.mse_loss(x, y, reduction=c),
    "smooth_l1": lambda lib, F, x, y, c: F.smooth_l1_loss(x, y, reduction=c, beta=0.5),
    "huber": lambda lib, F, x, y, c: F.huber_loss(x, y, reduction=c, delta=0.5),
    "huber_weighted": lambda lib, F, x, y, c: F.huber_loss(x, y, reduction=c, delta=0.5, weight=y.abs().detach()),
    "nll": lambda lib, F, x, y, c: F.nll_loss(x, lib.tensor([0, 2, 1, 3]), reduction=c),
    "nll_weight_ignore": lambda lib, F, x, y, c: F.nll_loss(x, lib.tensor([0, 2, 1, 3]), reduction=c,
                                                           weight=lib.tensor([1.0, 2.0, 0.5, 3.0], dtype=x.dtype), ignore_index=1),
    "nll_1d": lambda lib, F, x, y, c: F.nll_loss(x[0], lib.tensor(2), reduction=c),
    "nll_4d": lambda lib, F, x, y, c: F.nll_loss(x.reshape(1, 4, 2, 2), lib.tensor([[[0, 3], [1, 1]]]), reduction=c),
    "cross_entropy": lambda lib, F, x, y, c: F.cross_entropy(x, lib.tensor([0, 2, 1, 3]), reduction=c),
    "cross_entropy_weight": lambda lib, F, x, y, c: F.cross_entropy(x, lib.tensor([0, 2, 1, 3]), reduction=c,
                                                                   weight=lib.tensor([1.0, 2.0, 0.5, 3.0], dtype=x.dtype)),
    "cross_entropy_probabilities": lambda lib, F, x, y, c: F.cross_entropy(x, y.softmax(1).detach(), reduction=c),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(LOSS_CALLS))
def test_losses_match_torch_in_values_gradients_and_graph(name, reduction):
    rng = np.random.default_rng(5)
    x_values = rng.standard_normal((4, 4))
    y_values = x_values + np.array([0.0, 0.5, -0.5, 0.2])  # distances on and around beta = delta = 0.5
    results = []
    for lib in (gradcore, torch):
        x = lib.tensor(x_values, requires_grad=True)
        y = lib.tensor(y_values, requires_grad=True)
        loss = LOSS_CALLS[name](lib, lib.nn.functional, x, y, reduction)
        graph = _graph_names(loss)
        loss.backward(lib.ones_like(loss))
        results.append((loss.detach().numpy(), x.grad.numpy(), None if y.grad is None else y.grad.numpy(), graph))
    ours, theirs = results
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12, atol=1e-15)
    assert (ours[2] is None) == (theirs[2] is None)
    if ours[2] is not None:
        np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-12, atol=1e-15)
    if name == "cross_entropy_probabilities" and reduction == "mean":
        # PyTorch divides by a Python number in C++ there: its Scalar overload's node, DivBackward1.
        assert (ours[3][0], theirs[3][0]) == ("DivBackward0", "DivBackward1")
    else:
        assert ours[3] == theirs[3]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [0.1, 0.33, 0.5, 0.8])
def test_dropout_drops_the_elements_pytorch_drops(dtype, p):
    results = []
    for lib in (gradcore, torch):
        lib.manual_seed(3)
        # On the CPU in every mode: PyTorch's CUDA generator draws other numbers.
        x = lib.arange(35, dtype=getattr(lib, dtype), device="cpu").reshape(5, 7) + 1
        functional = lib.nn.functional.dropout(x, p)
        module = lib.nn.Dropout(p)(x)
        inplace = lib.nn.functional.dropout(x.clone(), p, inplace=True)
        results.append([t.numpy() for t in (functional, module, inplace)])
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)


# -- module API details shared with PyTorch -----------------------------------------------------------------------

def test_reprs_match_torch():
    def build(m):
        return m.Sequential(
            m.Linear(2, 3), m.ReLU(), m.Dropout(), m.GELU(), m.GELU(approximate="tanh"), m.Softmax(dim=1),
            m.LeakyReLU(0.2, inplace=True), m.Flatten(), m.Identity(), m.Sigmoid(), m.Tanh(), m.LogSoftmax(),
            m.ReLU(inplace=True), m.Linear(3, 1, bias=False), m.Dropout(0.25),
            m.MSELoss(), m.L1Loss(), m.CrossEntropyLoss(), m.NLLLoss(), m.BCELoss(), m.BCEWithLogitsLoss(),
            m.Sequential(m.Linear(1, 1), m.ModuleList([m.ReLU(), m.ReLU(), m.Tanh()])),
        )

    assert repr(build(nn)) == str(build(torch.nn))
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList())
    assert repr(nn.Sequential()) == repr(torch.nn.Sequential())
    parameter = nn.Parameter(gradcore.ones(2))
    if parameter.device.type == "cpu":  # under --device cuda the repr names the device, PyTorch's CPU one does not
        assert repr(parameter) == repr(torch.nn.Parameter(torch.ones(2)))


def test_state_dict_keys_and_parameter_order_match_torch():
    def build(m):
        return m.Sequential(m.Linear(3, 4), m.ReLU(), m.Sequential(m.Linear(4, 2), m.Linear(2, 2, bias=False)),
                            m.CrossEntropyLoss(weight=m.Linear(1, 2).bias.detach() if m is torch.nn
                                               else gradcore.ones(2)))

    ours, theirs = build(nn), build(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]


def test_load_state_dict_messages_match_torch():
    ours, theirs = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    for state in [{"weight": np.ones((2, 2)), "foo": np.ones(1)}, {"weight": np.ones((3, 2)), "bias": np.ones(2)}]:
        with pytest.raises(RuntimeError) as our_error:
            ours.load_state_dict({k: gradcore.tensor(v) for k, v in state.items()})
        with pytest.raises(RuntimeError) as their_error:
            theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
        assert str(our_error.value).replace("gradcore", "torch") == str(their_error.value)
    result = ours.load_state_dict({"weight": gradcore.ones(2, 2), "foo": gradcore.ones(1)}, strict=False)
    their_result = theirs.load_state_dict({"weight": torch.ones(2, 2), "foo": torch.ones(1)}, strict=False)
    assert repr(result) == repr(their_result)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["foo"]


def test_error_types_match_torch():
    rng = np.random.default_rng(10)
    logits = rng.standard_normal((3, 4))
    cases = [
        lambda lib, f: f.cross_entropy(lib.tensor(logits), lib.tensor([0, 1])),
        lambda lib, f: f.cross_entropy(lib.tensor(logits), lib.tensor([0, 5, 1])),
        lambda lib, f: f.cross_entropy(lib.tensor(logits), lib.tensor([0, 1, 2], dtype=lib.int32)),
        lambda lib, f: f.mse_loss(lib.tensor(logits), lib.tensor(logits), reduction="average"),
        lambda lib, f: f.binary_cross_entropy(lib.tensor([1.5]), lib.tensor([1.0])),
        lambda lib, f: f.binary_cross_entropy(lib.tensor([0.5]), lib.tensor([[1.0]])),
        lambda lib, f: f.binary_cross_entropy_with_logits(lib.tensor([0.5]), lib.tensor([[1.0]])),
        lambda lib, f: f.dropout(lib.tensor(logits), p=1.5),
        lambda lib, f: f.gelu(lib.tensor(logits), approximate="fast"),
    ]
    for case in cases:
        with pytest.raises(Exception) as their_error:
            case(torch, torch.nn.functional)
        with pytest.raises(type(their_error.value)) as our_error:
            case(gradcore, F)
        assert str(our_error.value).replace("gradcore", "torch") == str(their_error.value)
