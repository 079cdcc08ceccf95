"""GoCaffeEstimator/GoCaffeModel from PySpark against real local Spark
(local[2], GoCaffe's jar and plugin): fit LeNet for a few iterations,
transform keeps every row and column and adds prediction/probability, the
model saved from Python loads back and predicts the same.
"""
import os
import pathlib
import subprocess

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    jar = os.environ.get("GOCAFFE_JAR") or str(ROOT / "build" / "libs" / "gocaffe.jar")
    if not os.path.isfile(jar):
        raise RuntimeError(f"GoCaffe's jar {jar} is missing: run `make jar` or set GOCAFFE_JAR")
    s = (SparkSession.builder.master("local[2]").appName("gocaffe-pytest-ml")
         .config("spark.jars", jar)
         .config("spark.plugins", "com.gocaffe.shim.GoCaffePlugin")
         .config("spark.ui.enabled", "false")
         .config("spark.driver.host", "127.0.0.1")
         .getOrCreate())
    yield s
    s.stop()


def test_estimator_fit_transform_save_load(spark, tmp_path: pathlib.Path) -> None:
    from gocaffe import GoCaffeEstimator, GoCaffeModel

    mnist = tmp_path / "mnist"
    subprocess.run(["go", "run", "./tools/mnist2parquet", "-out", str(mnist), "-files", "2"], cwd=ROOT,
                   check=True, capture_output=True)
    (tmp_path / "net.prototxt").write_text((ROOT / "examples" / "lenet_train_test.prototxt").read_text())
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.01 momentum: 0.9\n'
        'weight_decay: 0.0005 lr_policy: "inv" gamma: 0.0001 power: 0.75 display: 20 max_iter: 60\n'
        'snapshot_prefix: "lenet" random_seed: 5\n')
    train_df = spark.read.parquet(str(mnist / "train")).limit(5000)
    test_df = spark.read.parquet(str(mnist / "test")).coalesce(1).limit(500)

    est = GoCaffeEstimator(solver=str(tmp_path / "solver.prototxt"), scoresBlob="ip2", applySoftmax=True)
    assert est.getOrDefault("clusterSize") == 1 and est.getOrDefault("syncMode") == "allreduce"
    model = est.fit(train_df)
    assert isinstance(model, GoCaffeModel)
    assert len(model.weights()) > 1_000_000
    out = model.transform(test_df).cache()
    assert out.columns == test_df.columns + ["prediction", "probability"]
    rows = out.select("label", "prediction", "probability").collect()
    assert len(rows) == 500
    assert all(abs(sum(r.probability) - 1) < 1e-4 for r in rows)
    acc = sum(r.label == r.prediction for r in rows) / len(rows)
    assert acc > 0.5, acc

    model.save(str(tmp_path / "model"))
    loaded = GoCaffeModel.load(str(tmp_path / "model"))
    again = loaded.transform(test_df).select("prediction").collect()
    assert [r.prediction for r in again] == [r.prediction for r in rows]


def test_estimator_rejects_bad_params(spark) -> None:
    from gocaffe import GoCaffeEstimator

    df = spark.createDataFrame([(1, bytes(784))], ["label", "data"])
    with pytest.raises(Exception, match="clusterSize"):
        GoCaffeEstimator(solver="/nonexistent/solver.prototxt", clusterSize=0).fit(df)
    with pytest.raises(Exception, match="inputCol column 'pixels'"):
        GoCaffeEstimator(solver="/nonexistent/solver.prototxt", inputCol="pixels").fit(df)
