"""PyTorch twins of the Caffe nets GoCaffe benchmarks, layer for layer.

LeNet is Caffe's examples/mnist/lenet_train_test.prototxt (conv 20@5x5, max
pool 2/2, conv 50@5x5, max pool 2/2, ip 500, ReLU, ip 10). CIFAR-10 quick is
examples/cifar10/cifar10_quick_train_test.prototxt (conv 32@5x5 pad 2, max
pool 3/2, ReLU, conv 32, ReLU, ave pool 3/2, conv 64, ReLU, ave pool 3/2,
ip 64, ip 10). AlexNet is Caffe's models/bvlc_alexnet/train_val.prototxt
(227x227 crops, LRN across channels, grouped conv2/4/5, dropout 0.5 in fc6
and fc7, 1000 classes); CaffeNet is caffe/testdata/nets/caffenet_train_val
.prototxt, AlexNet with each pooling before its LRN. ResNet-50 is
caffe/testdata/nets/resnet50_deploy.prototxt (the authors' Caffe release:
stride 2 in each stage's first 1x1 convolution and its projection shortcut,
convolutions without bias, BatchNorm + Scale as BatchNorm2d with affine
weights, trained with batch statistics). Caffe rounds pooled sizes up,
hence ceil_mode.
"""
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    input_shape = (1, 28, 28)
    base_lr = 0.01

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.ip1 = nn.Linear(50 * 4 * 4, 500)
        self.ip2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 2, 2)
        x = F.max_pool2d(self.conv2(x), 2, 2)
        x = F.relu(self.ip1(x.flatten(1)))
        return self.ip2(x)


class CifarQuick(nn.Module):
    input_shape = (3, 32, 32)
    base_lr = 0.001

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 32, 5, padding=2)
        self.conv3 = nn.Conv2d(32, 64, 5, padding=2)
        self.ip1 = nn.Linear(64 * 4 * 4, 64)
        self.ip2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 3, 2, ceil_mode=True))
        x = F.avg_pool2d(F.relu(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.avg_pool2d(F.relu(self.conv3(x)), 3, 2, ceil_mode=True)
        return self.ip2(self.ip1(x.flatten(1)))


class AlexNet(nn.Module):
    input_shape = (3, 227, 227)
    base_lr = 0.01
    classes = 1000
    iters = 20  # per timed repetition: an iteration is milliseconds, not microseconds

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        self.fc6 = nn.Linear(256 * 6 * 6, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, 1000)
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

    def forward(self, x):
        x = F.max_pool2d(self.lrn(F.relu(self.conv1(x))), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.lrn(F.relu(self.conv2(x))), 3, 2, ceil_mode=True)
        x = F.relu(self.conv4(F.relu(self.conv3(x))))
        x = F.max_pool2d(F.relu(self.conv5(x)), 3, 2, ceil_mode=True)
        x = F.dropout(F.relu(self.fc6(x.flatten(1))), 0.5, self.training)
        x = F.dropout(F.relu(self.fc7(x)), 0.5, self.training)
        return self.fc8(x)


class CaffeNet(AlexNet):
    def forward(self, x):
        x = self.lrn(F.max_pool2d(F.relu(self.conv1(x)), 3, 2, ceil_mode=True))
        x = self.lrn(F.max_pool2d(F.relu(self.conv2(x)), 3, 2, ceil_mode=True))
        x = F.relu(self.conv4(F.relu(self.conv3(x))))
        x = F.max_pool2d(F.relu(self.conv5(x)), 3, 2, ceil_mode=True)
        x = F.dropout(F.relu(self.fc6(x.flatten(1))), 0.5, self.training)
        x = F.dropout(F.relu(self.fc7(x)), 0.5, self.training)
        return self.fc8(x)


class Bottleneck(nn.Module):
    def __init__(self, cin, mid, out, stride):
        super().__init__()
        self.a = nn.Conv2d(cin, mid, 1, stride=stride, bias=False)
        self.b = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.c = nn.Conv2d(mid, out, 1, bias=False)
        self.bn_a, self.bn_b, self.bn_c = nn.BatchNorm2d(mid), nn.BatchNorm2d(mid), nn.BatchNorm2d(out)
        self.short = None
        if cin != out or stride != 1:
            self.short = nn.Sequential(nn.Conv2d(cin, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        y = F.relu(self.bn_a(self.a(x)))
        y = F.relu(self.bn_b(self.b(y)))
        y = self.bn_c(self.c(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


class ResNet50(nn.Module):
    input_shape = (3, 224, 224)
    base_lr = 0.1
    classes = 1000
    iters = 10

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        blocks, cin = [], 64
        for si, (n, mid, out) in enumerate([(3, 64, 256), (4, 128, 512), (6, 256, 1024), (3, 512, 2048)]):
            for b in range(n):
                blocks.append(Bottleneck(cin, mid, out, 2 if b == 0 and si > 0 else 1))
                cin = out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, ceil_mode=True)
        x = F.avg_pool2d(self.blocks(x), 7, 1)
        return self.fc(x.flatten(1))


NETS = {"lenet": LeNet, "cifar_quick": CifarQuick, "alexnet": AlexNet, "caffenet": CaffeNet, "resnet50": ResNet50}

# The cases GoCaffe's CPU benchmarks run: (net, batch).
CPU_CASES = [("lenet", 64), ("lenet", 512), ("cifar_quick", 100)]
