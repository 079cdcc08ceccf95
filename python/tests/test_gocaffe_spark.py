"""The gocaffe package against real local Spark (local[2], GoCaffe's jar and
plugin): gocaffe.train trains LeNet on DataFrames for a few iterations and
writes the model and the validation curves; bad options come back as
GoCaffeError with GoCaffe's message.
"""
import json
import pathlib
import subprocess

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("mnist")
    subprocess.run(["go", "run", "./tools/mnist2parquet", "-out", str(d), "-files", "2"], cwd=ROOT,
                   check=True, capture_output=True)
    return d


def test_train_on_dataframes(spark, mnist: pathlib.Path, tmp_path: pathlib.Path) -> None:
    import gocaffe

    net = (ROOT / "examples" / "lenet_train_test.prototxt").read_text()
    (tmp_path / "net.prototxt").write_text(net)
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\ntest_iter: 10 test_interval: 40 base_lr: 0.01 momentum: 0.9\n'
        'weight_decay: 0.0005 lr_policy: "inv" gamma: 0.0001 power: 0.75 display: 20 max_iter: 40\n'
        'snapshot_prefix: "lenet" random_seed: 5\n')
    train_df = spark.read.parquet(str(mnist / "train")).limit(5000)
    test_df = spark.read.parquet(str(mnist / "test")).limit(1000)
    model = tmp_path / "out" / "lenet.caffemodel"
    assert gocaffe.train(spark, ["-conf", str(tmp_path / "solver.prototxt"), "-model", str(model),
                                 "-clusterSize", "1"], train_df, test_df) == 0
    assert model.stat().st_size > 1_000_000
    recs = [json.loads(l) for l in (tmp_path / "out" / "lenet_metrics.jsonl").read_text().splitlines()]
    acc = [r for r in recs if r["phase"] == "test" and r["name"] == "accuracy"]
    assert [r["iteration"] for r in acc] == [0, 40]
    assert acc[-1]["value"] > 0.5, acc
    assert (tmp_path / "out" / "lenet_metrics.png").stat().st_size > 10_000


def test_bad_options_raise_gocaffe_error(spark, mnist: pathlib.Path) -> None:
    import gocaffe

    df = spark.read.parquet(str(mnist / "test"))
    with pytest.raises(gocaffe.GoCaffeError, match="-clusterSize 0"):
        gocaffe.train(spark, ["-conf", "/nonexistent/solver.prototxt", "-clusterSize", "0"], df)
    with pytest.raises(TypeError):
        gocaffe.train(spark, "-conf x", df)
