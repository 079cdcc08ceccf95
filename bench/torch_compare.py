# PyTorch side of GoCaffe's GPU benchmark: the same nets (Caffe's LeNet and
# CIFAR-10 quick, as examples/*_train_test.prototxt define them), the same
# training step (forward, softmax loss, backward, SGD with momentum 0.9 and
# weight decay 5e-4), random data, one GPU, fp32 and TF32, eager and with the
# whole step captured as a CUDA graph. Prints one line per case, in the
# format `goexec bench` prints, so the two sides of one device call line up:
#   python3 bench/torch_compare.py [--iters N] [--cases lenet:64,cifar10_quick:100]
# Times are medians of 5 runs of N iterations each, with CUDA events; peak
# GPU memory is torch.cuda.max_memory_allocated for the case.
import argparse, statistics, sys
import torch, torch.nn as nn, torch.nn.functional as F


class LeNet(nn.Module):  # conv1 pool1 conv2 pool2 ip1 relu1 ip2
    shape = (1, 28, 28)

    def __init__(s):
        super().__init__()
        s.c1, s.c2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)
        s.f1, s.f2 = nn.Linear(800, 500), nn.Linear(500, 10)

    def forward(s, x):
        x = F.max_pool2d(s.c1(x), 2, 2)
        x = F.max_pool2d(s.c2(x), 2, 2)
        return s.f2(F.relu(s.f1(x.flatten(1))))


class CifarQuick(nn.Module):  # Caffe's pooling rounds up: ceil_mode
    shape = (3, 32, 32)

    def __init__(s):
        super().__init__()
        s.c1 = nn.Conv2d(3, 32, 5, padding=2)
        s.c2 = nn.Conv2d(32, 32, 5, padding=2)
        s.c3 = nn.Conv2d(32, 64, 5, padding=2)
        s.f1, s.f2 = nn.Linear(64 * 4 * 4, 64), nn.Linear(64, 10)

    def forward(s, x):
        x = F.relu(F.max_pool2d(s.c1(x), 3, 2, ceil_mode=True))
        x = F.avg_pool2d(F.relu(s.c2(x)), 3, 2, ceil_mode=True)
        x = F.avg_pool2d(F.relu(s.c3(x)), 3, 2, ceil_mode=True)
        return s.f2(s.f1(x.flatten(1)))


NETS = {"lenet": LeNet, "cifar10_quick": CifarQuick}


def run(name, batch, iters, graph, tf32):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    torch.cuda.reset_peak_memory_stats()
    net = NETS[name]().cuda()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand((batch,) + NETS[name].shape, device="cuda")
    y = torch.randint(0, 10, (batch,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(20):
            step()
    torch.cuda.current_stream().wait_stream(side)
    fn = step
    if graph:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step()
        fn = g.replay
    times = []
    for _ in range(5):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(iters):
            fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / iters * 1000)
    us = statistics.median(times)
    mode = ("graph" if graph else "eager") + ("-tf32" if tf32 else "-fp32")
    peak = torch.cuda.max_memory_allocated() / 2**20
    print(f"torch {name} b{batch} {mode}: {us:.1f} us/iter, {batch / us * 1e6:.0f} img/s, peak {peak:.0f} MiB", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--cases", default="lenet:64,lenet:4096,cifar10_quick:100,cifar10_quick:1000")
    a = ap.parse_args()
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}", flush=True)
    for c in a.cases.split(","):
        name, b = c.split(":")
        for graph in (False, True):
            for tf32 in (False, True):
                run(name, int(b), a.iters if int(b) <= 512 else max(10, a.iters // 4), graph, tf32)


if __name__ == "__main__":
    sys.exit(main())
