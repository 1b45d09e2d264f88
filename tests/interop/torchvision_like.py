"""torchvision's models written by hand with torchvision's module names (torchvision is not
installed, and must not be): their ``state_dict()`` has torchvision's keys.  Shared by
test_torch_weights.py (weights loaded into convnet nets) and test_onnx_from_torch.py (the same
models through ``torch.onnx.export`` and ``convnet.interop.onnx.load``).

Each builder takes the ``torch`` module (the fixture), so importing this file needs no PyTorch.
"""
from __future__ import annotations

import math

from convnet.zoo.registry import scaled
from convnet.zoo.vgg import CONFIGS

__all__ = ["resnet", "vgg", "alexnet", "googlenet", "randomized"]


# -- torchvision's models, by hand -------------------------------------------------------------
def resnet(torch, block: str, layers, *, width: float, num_classes: int):
    """torchvision's ResNet (BasicBlock / Bottleneck v1.5) with channels scaled as the zoo scales them."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, planes, stride):
            super().__init__()
            exp = 1 if block == "basic" else 4
            if block == "basic":
                self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(planes)
                self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(planes)
            else:
                self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(planes)
                self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(planes)
                self.conv3 = nn.Conv2d(planes, planes * exp, 1, bias=False)
                self.bn3 = nn.BatchNorm2d(planes * exp)
            self.relu = nn.ReLU()
            self.downsample = None
            if stride != 1 or cin != planes * exp:
                self.downsample = nn.Sequential(nn.Conv2d(cin, planes * exp, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes * exp))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if block != "basic":
                y = self.bn3(self.conv3(self.relu(y)))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            c = scaled(64, width)
            self.conv1 = nn.Conv2d(3, c, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = c
            for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), layers), start=1):
                planes = scaled(planes, width)
                blocks = []
                for i in range(count):
                    blocks.append(Block(cin, planes, 2 if stage > 1 and i == 0 else 1))
                    cin = planes * (1 if block == "basic" else 4)
                setattr(self, f"layer{stage}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()


def vgg(torch, config: str, *, width: float, num_classes: int, map_hw):
    """torchvision's VGG (no BN); ``AdaptiveAvgPool2d(map_hw)`` is the identity on the test map,
    as (7, 7) is at 224×224."""
    nn = torch.nn

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [], 3
            for block in CONFIGS[config]:
                for f, k in block:
                    k = scaled(k, width)
                    layers += [nn.Conv2d(cin, k, f, padding=(f - 1) // 2), nn.ReLU(inplace=True)]
                    cin = k
                layers.append(nn.MaxPool2d(2, 2))
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d(map_hw)
            hidden = scaled(4096, width)
            self.classifier = nn.Sequential(nn.Linear(cin * math.prod(map_hw), hidden), nn.ReLU(True), nn.Dropout(),
                                            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(),
                                            nn.Linear(hidden, num_classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return VGG()


def alexnet(torch, *, width: float, num_classes: int, map_hw):
    nn = torch.nn
    c = lambda k: scaled(k, width)  # noqa: E731

    class AlexNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, c(64), 11, 4, 2), nn.ReLU(True), nn.MaxPool2d(3, 2),
                nn.Conv2d(c(64), c(192), 5, padding=2), nn.ReLU(True), nn.MaxPool2d(3, 2),
                nn.Conv2d(c(192), c(384), 3, padding=1), nn.ReLU(True),
                nn.Conv2d(c(384), c(256), 3, padding=1), nn.ReLU(True),
                nn.Conv2d(c(256), c(256), 3, padding=1), nn.ReLU(True), nn.MaxPool2d(3, 2))
            self.avgpool = nn.AdaptiveAvgPool2d(map_hw)
            self.classifier = nn.Sequential(
                nn.Dropout(), nn.Linear(c(256) * math.prod(map_hw), c(4096)), nn.ReLU(True),
                nn.Dropout(), nn.Linear(c(4096), c(4096)), nn.ReLU(True), nn.Linear(c(4096), num_classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return AlexNet()


def googlenet(torch, *, width: float, num_classes: int, aux: bool = False):
    """torchvision's GoogLeNet (transform_input=False; with ``aux``, its auxiliary heads exist
    as modules, as in torchvision's pretrained file, and are unused at inference)."""
    nn = torch.nn
    c = lambda k: scaled(k, width)  # noqa: E731

    class BasicConv2d(nn.Module):
        def __init__(self, cin, cout, **kw):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
            self.bn = nn.BatchNorm2d(cout, eps=0.001)

        def forward(self, x):
            return torch.relu(self.bn(self.conv(x)))

    class Inception(nn.Module):
        def __init__(self, cin, c1, c3r, c3, c5r, c5, proj):
            super().__init__()
            self.branch1 = BasicConv2d(cin, c1, kernel_size=1)
            self.branch2 = nn.Sequential(BasicConv2d(cin, c3r, kernel_size=1), BasicConv2d(c3r, c3, kernel_size=3,
                                                                                          padding=1))
            self.branch3 = nn.Sequential(BasicConv2d(cin, c5r, kernel_size=1), BasicConv2d(c5r, c5, kernel_size=3,
                                                                                          padding=1))
            self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                         BasicConv2d(cin, proj, kernel_size=1))

        def forward(self, x):
            return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)

    class Aux(nn.Module):
        def __init__(self, cin):
            super().__init__()
            self.conv = BasicConv2d(cin, 128, kernel_size=1)
            self.fc1 = nn.Linear(2048, 1024)
            self.fc2 = nn.Linear(1024, num_classes)

    class GoogLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = BasicConv2d(3, c(64), kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.conv2 = BasicConv2d(c(64), c(64), kernel_size=1)
            self.conv3 = BasicConv2d(c(64), c(192), kernel_size=3, padding=1)
            self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            sizes = {"3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
                     "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
                     "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
                     "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
                     "5b": (384, 192, 384, 48, 128, 128)}
            cin = c(192)
            for tag, s in sizes.items():
                s = [c(v) for v in s]
                setattr(self, f"inception{tag}", Inception(cin, *s))
                cin = s[0] + s[2] + s[4] + s[5]
                if tag == "4a" and aux:
                    self.aux1 = Aux(cin)
                if tag == "4d" and aux:
                    self.aux2 = Aux(cin)
            self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.dropout = nn.Dropout(0.2)
            self.fc = nn.Linear(cin, num_classes)

        def forward(self, x):
            x = self.maxpool1(self.conv1(x))
            x = self.maxpool2(self.conv3(self.conv2(x)))
            x = self.maxpool3(self.inception3b(self.inception3a(x)))
            for tag in ("4a", "4b", "4c", "4d", "4e"):
                x = getattr(self, f"inception{tag}")(x)
            x = self.inception5b(self.inception5a(self.maxpool4(x)))
            return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))

    return GoogLeNet()


def randomized(torch, model, seed: int = 0):
    """Random BN affine parameters, running statistics and counters; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    return model.eval()
