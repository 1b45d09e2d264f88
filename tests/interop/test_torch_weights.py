"""Issue 16, item 3: PyTorch / safetensors weights with torchvision's key names.

torchvision is not installed (and must not be): the PyTorch models here are written by hand
with torchvision's module names (tests/interop/torchvision_like.py), so their ``state_dict()``
has torchvision's keys.  Each is loaded into the convnet net and the logits compared (NCHW input
for PyTorch, NHWC for convnet).
"""
from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from convnet import zoo
from convnet.errors import CheckpointError, ConfigError, SecurityError
from convnet.layers import BatchNorm, Conv2D, ConvTranspose2D, Dense, ReLU
from convnet.net import Net
from convnet.interop.torch import load_state_dict, module_names, read_state_dict, torchvision_net
from convnet.train.safetensors_io import write_safetensors

from torchvision_like import alexnet, googlenet, randomized, resnet, vgg

pytestmark = pytest.mark.oracle


def assert_same_logits(torch, model, net, rng, batch: int = 2):
    x = rng.standard_normal((batch, *net.input_shape)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    got = net.predict(x)
    err = np.abs(got - ref).max()
    assert err <= 1e-4 * np.abs(ref).max(), f"max |diff| {err:.3g} vs max |ref| {np.abs(ref).max():.3g}"


# -- each family --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, block, layers, width", [
    ("resnet18", "basic", (2, 2, 2, 2), 1 / 8),
    ("resnet50", "bottleneck", (3, 4, 6, 3), 1 / 16),
])
def test_resnets_load_torchvision_state_dicts(name, block, layers, width, torch, rng):
    model = randomized(torch, resnet(torch, block, layers, width=width, num_classes=7))
    net = zoo.get(name, width=width, num_classes=7, input_shape=(64, 64, 3))
    assert load_state_dict(net, model.state_dict()) is net
    assert_same_logits(torch, model, net, rng)


@pytest.mark.parametrize("name, config", [("vgg11", "A"), ("vgg16", "D")])
def test_vggs_load_torchvision_state_dicts_with_the_first_fc_permuted(name, config, torch, rng):
    """At 64×64 the last map is 2×2: classifier.0 reads it in PyTorch's (C, H, W) order."""
    model = randomized(torch, vgg(torch, config, width=1 / 16, num_classes=5, map_hw=(2, 2)))
    net = zoo.get(name, width=1 / 16, num_classes=5, input_shape=(64, 64, 3))
    load_state_dict(net, model.state_dict())
    assert module_names(net, model.state_dict())["fc6"] == "classifier.0"
    assert_same_logits(torch, model, net, rng)


def test_torchvision_alexnet_loads_into_torchvision_net(torch, rng):
    """127×127 gives a 3×3 map (6×6 at 224×224), so the column permutation is exercised."""
    model = randomized(torch, alexnet(torch, width=1 / 16, num_classes=6, map_hw=(3, 3)))
    net = torchvision_net("alexnet", width=1 / 16, num_classes=6, input_shape=(127, 127, 3))
    load_state_dict(net, model.state_dict())
    assert_same_logits(torch, model, net, rng)


def test_torchvision_googlenet_loads_with_its_auxiliary_heads_ignored(torch, rng):
    model = randomized(torch, googlenet(torch, width=1 / 16, num_classes=4, aux=True))
    net = torchvision_net("googlenet", width=1 / 16, num_classes=4, input_shape=(64, 64, 3))
    with pytest.raises(CheckpointError, match=r"aux1\.conv\.conv\.weight.*ignore=\('aux1\.', 'aux2\.'\)"):
        load_state_dict(net, model.state_dict())
    load_state_dict(net, model.state_dict(), ignore=("aux1.", "aux2."))
    assert_same_logits(torch, model, net, rng)


def test_any_net_named_like_the_modules_loads(torch, rng):
    """Module names = node names: a transposed convolution, BN on maps and on vectors, a Linear
    after a map and one after a vector."""
    nn = torch.nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.conv = nn.Conv2d(4, 6, 3, groups=2, bias=False)
            self.fc = nn.Linear(6 * 6 * 8, 5)
            self.bn1d = nn.BatchNorm1d(5, eps=1e-3)
            self.out = nn.Linear(5, 2)

        def forward(self, x):
            x = self.conv(torch.relu(self.bn(self.up(x))))
            return self.out(self.bn1d(self.fc(torch.flatten(x, 1))))

    model = randomized(torch, Model())
    with torch.no_grad():
        model.bn1d.running_mean.uniform_(-0.3, 0.3)
        model.bn1d.running_var.uniform_(0.5, 1.5)
    net = Net.sequential([ConvTranspose2D(4, 3, stride=2, padding=1, output_padding=1, name="up"),
                          BatchNorm(name="bn"), ReLU(name="relu"), Conv2D(6, 3, groups=2, use_bias=False, name="conv"),
                          Dense(5, name="fc"), BatchNorm(eps=1e-3, name="bn1d"), Dense(2, name="out")],
                         input_shape=(4, 5, 3))
    load_state_dict(net, model.state_dict())
    assert_same_logits(torch, model, net, rng)


def test_torchvision_net_sizes_are_torchvisions():
    assert torchvision_net("alexnet").num_params() == 61_100_840
    assert torchvision_net("googlenet").num_params() == 6_624_904  # without the auxiliary heads
    assert torchvision_net("vgg16").num_params() == 138_357_544
    with pytest.raises(ConfigError, match="vgg16_c"):
        torchvision_net("vgg16_c")


# -- the sources --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def r18(torch):
    """A small torchvision-keyed ResNet-18 and its state dict as NumPy arrays."""
    model = randomized(torch, resnet(torch, "basic", (2, 2, 2, 2), width=1 / 16, num_classes=3), seed=1)
    return model, {k: v.numpy().copy() for k, v in model.state_dict().items()}


def small_r18():
    return zoo.get("resnet18", width=1 / 16, num_classes=3, input_shape=(32, 32, 3))


def test_numpy_state_dict_safetensors_file_and_pth_file_give_the_same_net(r18, torch, rng, tmp_path):
    model, arrays = r18
    st = tmp_path / "r18.safetensors"
    with open(st, "wb") as f:
        write_safetensors(f, arrays)
    pth = tmp_path / "r18.pth"
    torch.save(model.state_dict(), pth)
    nets = [load_state_dict(small_r18(), src) for src in (arrays, st, str(pth))]
    for net in nets:
        assert_same_logits(torch, model, net, rng)
    for a, b in zip(nets[0].named_parameters(), nets[2].named_parameters()):
        np.testing.assert_array_equal(a[1], b[1])


def test_safetensors_written_by_the_safetensors_package_load(r18, torch, rng, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model, _ = r18
    path = tmp_path / "r18.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    assert_same_logits(torch, model, load_state_dict(small_r18(), path), rng)


def test_a_pth_file_without_torch_names_the_extra(r18, torch, tmp_path, monkeypatch):
    path = tmp_path / "r18.pth"
    torch.save(r18[0].state_dict(), path)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(CheckpointError, match=r"needs PyTorch \(pip install 'convnet\[torch\]'\)"):
        read_state_dict(path)


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {_Boom.marker}",))


def test_a_pth_file_that_runs_code_is_refused(torch, tmp_path):
    _Boom.marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "x": _Boom()}, path)  # torch.save pickles anything
    with pytest.raises(SecurityError, match="only weights"):
        read_state_dict(path)
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps({"conv1.weight": _Boom()}, protocol=2))
    with pytest.raises((SecurityError, CheckpointError)):
        read_state_dict(legacy)
    assert not _Boom.marker.exists()


def test_a_torch_tensor_state_dict_in_half_precision_loads(r18, torch, rng):
    model, _ = r18
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    net = load_state_dict(small_r18(), half)
    np.testing.assert_array_equal(net["fc"].params["b"], model.fc.bias.detach().half().float().numpy())


# -- errors ------------------------------------------------------------------------------------------
def test_every_key_problem_is_listed_in_one_error_and_the_net_is_untouched(r18):
    _, arrays = r18
    bad = dict(arrays)
    bad["layer9.0.conv1.weight"] = np.zeros(3, np.float32)  # no place in the net
    del bad["layer1.0.bn1.running_var"]  # a place with no key
    bad["fc.weight"] = np.zeros((3, 5), np.float32)  # mis-shaped
    net = small_r18().build()
    before = {n: p.copy() for n, p, _ in net.named_parameters()}
    with pytest.raises(CheckpointError) as err:
        load_state_dict(net, bad)
    text = str(err.value)
    assert "keys with no place in the net (1): layer9.0.conv1.weight" in text
    assert "parameters with no key (1): layer1.0.bn1.running_var" in text
    assert "mis-shaped keys (1): fc.weight (3, 5) (expected (3, 32) for node 'fc')" in text
    for n, p, _ in net.named_parameters():
        np.testing.assert_array_equal(p, before[n])


def test_num_batches_tracked_is_skipped_and_no_other_extra_key(r18):
    _, arrays = r18
    assert any(k.endswith("num_batches_tracked") for k in arrays)
    load_state_dict(small_r18(), arrays)
    with pytest.raises(CheckpointError, match="no place.*fc.num_batches_tracked"):
        load_state_dict(small_r18(), {**arrays, "fc.num_batches_tracked": np.array(3)})


def test_non_finite_weights_are_refused(r18):
    _, arrays = r18
    with pytest.raises(CheckpointError, match="NaN or infinite.*conv1.weight"):
        load_state_dict(small_r18(), {**arrays, "conv1.weight": arrays["conv1.weight"] * np.nan})


def test_the_zoo_caffe_alexnet_refuses_torchvision_keys_and_says_where_they_go(torch):
    model = alexnet(torch, width=1 / 16, num_classes=10, map_hw=(6, 6))
    with pytest.raises(CheckpointError, match=r"mis-shaped keys.*features\.0\.weight.*torchvision_net\('alexnet'\)"):
        load_state_dict(zoo.get("alexnet", width=1 / 16, num_classes=10), model.state_dict())


def test_bad_sources(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_state_dict(tmp_path / "nothing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(CheckpointError, match="neither a safetensors file nor a PyTorch file"):
        read_state_dict(junk)
    with pytest.raises(ConfigError, match="`source`"):
        read_state_dict(42)
    with pytest.raises(CheckpointError, match="not an array of numbers"):
        read_state_dict({"fc.weight": "abc"})
