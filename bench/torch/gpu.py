"""PyTorch GPU training steps of GoCaffe's benchmark nets: the reference run
for GoCaffe's GPU figures. Run it in the same device call as `goexec bench`
and compare ratios, never absolute times from different calls.

    python bench/torch/gpu.py [--json FILE] [--nets lenet,cifar_quick,alexnet]

For each net and batch it runs eager and whole-step CUDA graph, fp32 and
TF32, and prints one JSON line per case: microseconds per training
iteration (forward, backward, SGD with momentum 0.9 and weight decay 5e-4),
the median of 5 timed repetitions measured with CUDA events after 20
warm-up iterations on a side stream, and images per second.
"""
import argparse
import json
import os
import statistics
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nets import NETS  # noqa: E402

GPU_CASES = [("lenet", [64, 512, 4096]), ("cifar_quick", [100, 1000]), ("alexnet", [256])]


def run_case(name, batch, graph, tf32, iters):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.manual_seed(0)
    net = NETS[name]().cuda()
    opt = torch.optim.SGD(net.parameters(), lr=net.base_lr, momentum=0.9, weight_decay=5e-4)
    x = torch.rand((batch,) + net.input_shape, device="cuda")
    y = torch.randint(0, getattr(net, "classes", 10), (batch,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    torch.cuda.reset_peak_memory_stats()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(20):
            step()
    torch.cuda.current_stream().wait_stream(side)
    run = step
    if graph:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step()
        run = g.replay
    times = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            run()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / iters * 1000.0)
    us = statistics.median(times)
    return {"side": "torch", "net": name, "batch": batch, "graph": graph, "tf32": tf32,
            "us_per_iter": round(us, 2), "img_per_s": round(batch / us * 1e6),
            "peak_mem_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="also write all results to this file")
    ap.add_argument("--nets", default="lenet,cifar_quick")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    wanted = set(args.nets.split(","))
    print(json.dumps({"side": "torch", "version": torch.__version__,
                      "device": torch.cuda.get_device_name(0)}), flush=True)
    results = []
    for name, batches in GPU_CASES:
        if name not in wanted:
            continue
        for batch in batches:
            for graph in (False, True):
                for tf32 in (False, True):
                    try:
                        iters = getattr(NETS[name], "iters", 200 if batch <= 512 else 50)
                        r = run_case(name, batch, graph, tf32, iters)
                    except Exception as ex:  # a case that cannot run is reported, not fatal
                        r = {"side": "torch", "net": name, "batch": batch, "graph": graph,
                             "tf32": tf32, "error": str(ex)[:200]}
                    print(json.dumps(r), flush=True)
                    results.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
