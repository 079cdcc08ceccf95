# CPU time per training iteration of the PyTorch CPU anchor's nets, for a
# comparison that survives a loaded machine: with one thread, process CPU
# time is the work itself, whatever else runs. Model definitions come from
# ../shared/bench/anchor_torch_cpu.py (its text up to its first benchmark).
#   .venv-bench/bin/python bench/torch_cputime.py [anchor path] [steps]
import sys, time
anchor = sys.argv[1] if len(sys.argv) > 1 else "../shared/bench/anchor_torch_cpu.py"
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 30
src = open(anchor).read()
sys.argv = [anchor, "1"]  # the anchor's thread count: one
ns = {}
exec(src[:src.index('print("torch"')], ns)
torch, F = ns["torch"], ns["F"]
print("torch", torch.__version__, "threads", torch.get_num_threads())
for name, cls, shape, lr in (("lenet", ns["LeNet"], (64, 1, 28, 28), 0.01),
                             ("lenet", ns["LeNet"], (512, 1, 28, 28), 0.01),
                             ("cifar_quick", ns["CifarQuick"], (100, 3, 32, 32), 0.001)):
    model = cls()
    x, y = torch.randn(*shape), torch.randint(0, 10, (shape[0],))
    def fb():
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
    for _ in range(10):
        fb()
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        fb()
    c1, w1 = time.process_time(), time.perf_counter()
    print(f"{name}\tbatch={shape[0]}\tfwdbwd\tcpu_ms={(c1-c0)/steps*1e3:.2f}\twall_ms={(w1-w0)/steps*1e3:.2f}", flush=True)
