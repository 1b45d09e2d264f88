"""Issue 5: FC→CONV conversion and dense (sliding) evaluation, checked against crops."""
import numpy as np
import pytest

from convnet.analysis.surgery import (
    average_scores,
    crop_scores,
    dense_scores,
    to_dense,
    to_fully_convolutional,
    total_stride,
)
from convnet.errors import ConfigError
from convnet.layers import LRN, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from convnet.net import Net


def alexnet_style():
    """AlexNet's shape in miniature: 11×11/4 conv, LRN, overlapping 3×3/2 pools, grouped conv, FC-FC-FC.
    Unpadded convolutions: with zero padding a crop's border sees zeros where the large image
    has pixels, so only valid convolutions make every cell equal to its crop exactly."""
    return Net.sequential(
        [
            Conv2D(8, 11, stride=4, name="conv1"), ReLU(name="relu1"), LRN(name="norm1"),
            MaxPool2D(3, stride=2, name="pool1"),
            Conv2D(12, 3, groups=2, name="conv2"), ReLU(name="relu2"), MaxPool2D(3, stride=2, name="pool2"),
            Flatten(name="flatten"), Dense(24, name="fc6"), ReLU(name="relu6"), Dropout(0.5, name="drop6"),
            Dense(16, name="fc7"), ReLU(name="relu7"), Dense(5, name="fc8"),
        ],
        input_shape=(67, 67, 3),
    ).build(rng=np.random.default_rng(1))


def vgg_style():
    """VGG's shape in miniature: 3×3 convs and 2×2/2 pools, three FC layers (valid convs; see above)."""
    layers = []
    for i, k in enumerate((6, 8, 8), start=1):
        layers += [Conv2D(k, 3, name=f"conv{i}_1"), ReLU(name=f"relu{i}_1"), MaxPool2D(2, name=f"pool{i}")]
    layers += [Dense(20, name="fc6"), ReLU(name="relu6"), Dense(16, name="fc7"), ReLU(name="relu7"), Dense(4, name="fc8")]
    return Net.sequential(layers, input_shape=(46, 46, 3)).build(rng=np.random.default_rng(2))


NETS = {"alexnet": (alexnet_style, 16), "vgg": (vgg_style, 8)}


@pytest.mark.parametrize("which", sorted(NETS))
def test_converted_net_matches_original_on_one_crop(which):
    net = NETS[which][0]()
    fcn = to_fully_convolutional(net)
    assert not any(isinstance(layer, (Dense, Flatten)) for layer in fcn.layers)
    x = np.random.default_rng(3).standard_normal((3, *net.input_shape)).astype(np.float32)
    y = net.predict(x)
    y_fc = fcn.predict(x)
    assert y_fc.shape == (3, 1, 1, y.shape[1])
    np.testing.assert_allclose(y_fc[:, 0, 0], y, rtol=1e-5, atol=1e-5 * np.abs(y).max())


def test_first_fc_becomes_conv_with_the_volume_as_kernel():
    net = vgg_style()
    fcn = to_fully_convolutional(net)
    h, w, c = net.shapes()["pool3"]
    assert fcn["fc6"].kernel_size == (h, w)
    assert fcn["fc6"].params["w"].shape == (h, w, c, 20)
    assert fcn["fc7"].kernel_size == (1, 1) and fcn["fc8"].kernel_size == (1, 1)
    # NHWC order respected: the conv kernel is the dense matrix reshaped, not transposed
    np.testing.assert_array_equal(fcn["fc6"].params["w"].reshape(-1, 20), net["fc6"].params["w"])


@pytest.mark.parametrize("which", sorted(NETS))
@pytest.mark.parametrize("shifts", [1, 2])
def test_score_map_cells_equal_the_original_on_crops(which, shifts):
    build, stride = NETS[which]
    net = build()
    fcn = to_fully_convolutional(net)
    assert total_stride(fcn) == (stride, stride)
    h, w = net.input_shape[:2]
    image = np.random.default_rng(4).standard_normal((h + 2 * stride, w + 3 * stride, 3)).astype(np.float32)
    scores, step = dense_scores(fcn, image, crop_shape=(h, w), shifts=shifts)
    assert step == (stride // shifts, stride // shifts)
    assert scores.shape[:2] == (2 * shifts + 1, 3 * shifts + 1)
    ref = crop_scores(net, image, crop_shape=(h, w), step=step)
    rel = np.abs(scores - ref).max() / np.abs(ref).max()
    assert rel <= 1e-5, rel
    np.testing.assert_allclose(average_scores(scores), ref.reshape(-1, ref.shape[-1]).mean(0), rtol=1e-5, atol=1e-6)


def test_reverse_conversion_restores_dense_layers():
    net = alexnet_style()
    back = to_dense(to_fully_convolutional(net))
    assert [type(l).__name__ for l in back.layers].count("Dense") == 3
    x = np.random.default_rng(5).standard_normal((2, *net.input_shape)).astype(np.float32)
    np.testing.assert_allclose(back.predict(x), net.predict(x), rtol=1e-5, atol=1e-6)


def test_nothing_to_convert_is_a_clear_error():
    net = Net.sequential([Conv2D(4, 3), ReLU()], input_shape=(8, 8, 3)).build()
    with pytest.raises(ConfigError, match="no Dense"):
        to_fully_convolutional(net)
    with pytest.raises(ConfigError, match="nothing to convert"):
        to_dense(net)


def test_converted_net_refuses_an_image_smaller_than_the_crop():
    net = vgg_style()
    fcn = to_fully_convolutional(net)
    with pytest.raises(Exception, match="smaller"):
        dense_scores(fcn, np.zeros((30, 60, 3), np.float32), crop_shape=(46, 46))
