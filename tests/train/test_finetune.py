"""Issue 4, fine-tuning: load weights by name, freeze by prefix, new classifier for new classes."""
import numpy as np
import pytest

from convnet.errors import ConfigError
from convnet.pattern import parse
from convnet.train.checkpoint import load_checkpoint
from convnet.train.config import TrainConfig
from convnet.train.finetune import freeze, load_weights, replace_classifier
from convnet.train.run import train

BASE = "INPUT[8x8x1] -> CONV3-8 -> RELU -> POOL2 -> CONV3-8 -> RELU -> FC-16 -> RELU -> FC-{k}"


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("base")
    train(TrainConfig(arch=BASE.format(k=10), epochs=1, batch=64, max_steps=6), out, quiet=True)
    return out / "last.safetensors"


def test_load_weights_skips_only_the_mismatched_classifier(base_checkpoint):
    net = parse(BASE.format(k=3)).build(rng=np.random.default_rng(5))
    result = load_weights(net, base_checkpoint)
    assert result["skipped"] == ["fc2.w", "fc2.b"]
    tensors, _ = load_checkpoint(base_checkpoint)
    np.testing.assert_array_equal(net["conv1"].params["w"], tensors["param/conv1.w"])


def test_freeze_hides_parameters_from_the_optimizer_and_replace_classifier():
    net = parse(BASE.format(k=10)).build()
    assert freeze(net, ["conv"]) == ["conv1", "conv2"]
    assert not any(name.startswith("conv") for name, _, _ in net.named_parameters())
    assert replace_classifier(net, 7) == "fc2"
    assert net.output_shape() == (7,)
    with pytest.raises(ConfigError, match="no layer"):
        freeze(net, ["nothing_called_this"])


def test_fine_tune_on_new_classes_through_the_cli_keeps_frozen_layers(base_checkpoint, tmp_path):
    from convnet.cli import main
    from convnet.data import load_digits

    train_set, test_set = load_digits()
    keep_tr, keep_te = train_set.y < 3, test_set.y < 3
    data = tmp_path / "three.npz"
    np.savez(data, x=train_set.x[keep_tr], y=train_set.y[keep_tr], x_test=test_set.x[keep_te], y_test=test_set.y[keep_te])
    out = tmp_path / "ft"
    code = main(["train", "--data", f"npz:{data}", "--arch", BASE.format(k=3), "--init-from", str(base_checkpoint),
                 "--freeze", "conv1", "--epochs", "2", "--quiet", "--out", str(out)])
    assert code == 0
    before, _ = load_checkpoint(base_checkpoint)
    after, meta = load_checkpoint(out / "last.safetensors")
    np.testing.assert_array_equal(after["param/conv1.w"], before["param/conv1.w"])  # frozen
    assert not np.array_equal(after["param/conv2.w"], before["param/conv2.w"])  # trained
    assert meta["classes"] == ["0", "1", "2"]
