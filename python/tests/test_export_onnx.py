"""`goexec export` against onnxruntime: each deploy net with weights (drawn
from its fillers with a fixed seed and saved as a .caffemodel) runs in goexec
and, exported, in onnxruntime on the same random input; the logits and the
logits must agree within 1e-4 of the largest logit's magnitude (float32
sums in different orders), the softmax outputs within 1e-4, and the top-1
classes must match.
"""
import pathlib

import numpy as np
import onnx
import pytest

from conftest import ROOT, run

NETS = ROOT / "caffe" / "testdata" / "nets"

# net, input shape (batch, C, H, W), logits blob under the Softmax.
CASES = [
    ("lenet", (4, 1, 28, 28), "ip2"),
    ("cifar10_quick", (2, 3, 32, 32), "ip2"),
    ("cifar10_full", (2, 3, 32, 32), "ip1"),
    ("caffenet_deploy", (1, 3, 227, 227), "fc8"),
    ("googlenet_deploy", (1, 3, 224, 224), "loss3/classifier"),
    ("resnet50_deploy", (1, 3, 224, 224), "fc1000"),
]

REL_TOL = 1e-4


@pytest.mark.parametrize("net,shape,logits", CASES, ids=[c[0] for c in CASES])
def test_export_matches_goexec(tmp_path: pathlib.Path, goexec: str, net: str, shape, logits: str) -> None:
    import onnxruntime as ort

    prototxt = NETS / f"{net}.prototxt"
    weights = tmp_path / "w.caffemodel"
    x = np.random.default_rng(7).uniform(-1, 1, size=shape).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run(goexec, "forward", "-model", str(prototxt), "-random-weights", "3", "-save-weights", str(weights),
        "-input", f"data={tmp_path / 'x.npy'}", "-blobs", f"{logits},prob", "-out", str(tmp_path))
    ref_logits = np.load(tmp_path / (logits.replace("/", "_") + ".npy"))
    ref_prob = np.load(tmp_path / "prob.npy")

    model = tmp_path / f"{net}.onnx"
    log = run(goexec, "export", "-model", str(prototxt), "-weights", str(weights), "-onnx", str(model),
              "-outputs", logits)
    assert "opset 17" in log
    m = onnx.load(str(model))
    onnx.checker.check_model(m, full_check=True)  # the schema, every node's attributes, shape inference
    assert [(o.domain, o.version) for o in m.opset_import] == [("", 17)]

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    assert names == ["prob", logits], names
    prob, got_logits = sess.run(None, {"data": x})

    scale = float(np.abs(ref_logits).max())
    err = float(np.abs(got_logits.reshape(ref_logits.shape) - ref_logits).max())
    print(f"{net}: max |logits diff| {err:.3g} (largest logit {scale:.3g}); "
          f"max |prob diff| {float(np.abs(prob.reshape(ref_prob.shape) - ref_prob).max()):.3g}")
    assert err <= REL_TOL * scale, f"{net}: logits differ by {err} (tolerance {REL_TOL * scale})"
    np.testing.assert_allclose(prob.reshape(ref_prob.shape), ref_prob, rtol=0, atol=REL_TOL)
    # The logits must differ from each other, or the comparison says little.
    assert float(ref_logits.std()) > 0.05 * scale > 0, f"{net}: logits nearly constant ({ref_logits})"
    assert (prob.reshape(ref_prob.shape).argmax(1) == ref_prob.argmax(1)).all()


def test_export_names_the_layer_onnx_cannot_express(tmp_path: pathlib.Path, goexec: str) -> None:
    """A train/test net (data and loss layers) is refused with the layer named."""
    import subprocess

    net = ROOT / "examples" / "lenet_train_test.prototxt"
    weights = tmp_path / "w.caffemodel"
    run(goexec, "forward", "-model", str(NETS / "lenet.prototxt"), "-random-weights", "1", "-save-weights",
        str(weights), "-out", str(tmp_path))
    p = subprocess.run([goexec, "export", "-model", str(net), "-weights", str(weights), "-onnx",
                        str(tmp_path / "x.onnx")], capture_output=True, text=True)
    assert p.returncode == 1
    assert 'layer "mnist" (type MemoryData): ONNX cannot express this layer' in p.stderr, p.stderr
    assert not (tmp_path / "x.onnx").exists()
