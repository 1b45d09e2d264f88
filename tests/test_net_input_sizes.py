"""A built net runs on other input sizes when its parameters allow it (CONV, POOL, merges, GAP),
keeping its weights; layers whose parameters depend on the size (FC) refuse clearly."""
import numpy as np
import pytest

from convnet import zoo
from convnet.errors import ShapeError
from convnet.pattern import parse


@pytest.mark.parametrize("name, small, large", [("resnet20_cifar", (16, 16, 3), (24, 20, 3)),
                                                ("googlenet", (64, 64, 3), (96, 80, 3))])
def test_fully_convolutional_zoo_nets_run_on_larger_images(name, small, large):
    net = zoo.get(name, input_shape=small, num_classes=4, **({"width": 0.25} if name == "googlenet" else {}))
    net.build(small, rng=np.random.default_rng(0))
    before = {n: p.copy() for n, p, _ in net.named_parameters()}
    assert net.predict(np.ones((1, *small), np.float32)).shape == (1, 4)
    assert net.predict(np.ones((2, *large), np.float32)).shape == (2, 4)
    for n, p, _ in net.named_parameters():
        np.testing.assert_array_equal(p, before[n], err_msg=n)


def test_a_net_with_fc_layers_refuses_another_size():
    net = parse("INPUT[8x8x1] -> CONV3-4 -> RELU -> FC-3").build()
    with pytest.raises(ShapeError, match="built"):
        net.forward(np.ones((1, 10, 10, 1), np.float32))
