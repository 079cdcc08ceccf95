"""PyTorch CPU training steps of GoCaffe's benchmark nets, the reference run
printed beside `go test -bench` (bench/run.sh runs both in one command).

    python bench/torch/cpu.py [--threads 2] [--cputime] [--steps 50]
    python bench/torch/cpu.py --nets caffenet:32,resnet50:16 --steps 3 --reps 2 --warm 1

Each case prints one line: the median and minimum milliseconds per
iteration over --reps repetitions (5) of --steps iterations, after --warm
(20) warm-up iterations, for the full step (forward, backward, SGD with momentum 0.9 and
weight decay 5e-4, as Caffe's solvers) and for forward+backward alone (what
`caffe time` measures). --cputime runs one thread and reports process CPU
time per iteration as well, a figure that survives a loaded machine.
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nets import CPU_CASES, NETS  # noqa: E402


def measure(fn, warm, reps, steps):
    for _ in range(warm):
        fn()
    wall, cpu = [], []
    for _ in range(reps):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(steps):
            fn()
        cpu.append((time.process_time() - c0) / steps * 1e3)
        wall.append((time.perf_counter() - w0) / steps * 1e3)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cputime", action="store_true", help="one thread; print CPU ms per iteration too")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warm", type=int, default=20)
    ap.add_argument("--nets", default="", help="NET:BATCH,... (names in nets.NETS); default the LeNet and CIFAR-10 cases")
    args = ap.parse_args()
    threads = 1 if args.cputime else args.threads
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__} threads {torch.get_num_threads()}", flush=True)
    cases = CPU_CASES
    if args.nets:
        try:
            cases = [(n, int(b)) for n, b in (c.split(":") for c in args.nets.split(","))]
        except ValueError:
            ap.error(f"--nets {args.nets!r}: want NET:BATCH[,NET:BATCH...]")
        for n, _ in cases:
            if n not in NETS:
                ap.error(f"--nets: unknown net {n!r} (have {', '.join(NETS)})")
    for name, batch in cases:
        model = NETS[name]()
        x = torch.randn(batch, *model.input_shape)
        y = torch.randint(0, 10, (batch,))
        opt = torch.optim.SGD(model.parameters(), lr=model.base_lr, momentum=0.9, weight_decay=5e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

        def fwdbwd():
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()

        for tag, fn in (("step", step), ("fwdbwd", fwdbwd)):
            wall, cpu = measure(fn, args.warm, args.reps, args.steps)
            line = (f"torch-cpu\t{name}\tbatch={batch}\tthreads={threads}\t{tag}\t"
                    f"median_ms={statistics.median(wall):.2f}\tmin_ms={min(wall):.2f}")
            if args.cputime:
                line += f"\tcpu_ms={statistics.median(cpu):.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
