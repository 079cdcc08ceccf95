"""GoCaffeEstimator/GoCaffeModel from PySpark against real local Spark
(local[2], GoCaffe's jar and plugin): fit LeNet for a few iterations in a
Pipeline, transform keeps every row and column and adds
prediction/probability, the model saved from Python loads back and
predicts the same: through GoCaffeModel.load, through pyspark's own
PipelineModel.load, and in a new Python process and JVM that never imports
gocaffe itself. gocaffe.test and gocaffe.features score and extract with
the fitted weights on the same rows.
"""
import json
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import ROOT


def test_estimator_fit_transform_save_load(spark, tmp_path: pathlib.Path) -> None:
    import gocaffe
    from gocaffe import GoCaffeEstimator, GoCaffeModel
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.sql import functions as F

    mnist = tmp_path / "mnist"
    subprocess.run(["go", "run", "./tools/mnist2parquet", "-out", str(mnist), "-files", "2"], cwd=ROOT,
                   check=True, capture_output=True)
    (tmp_path / "net.prototxt").write_text((ROOT / "examples" / "lenet_train_test.prototxt").read_text())
    solver = tmp_path / "solver.prototxt"
    solver.write_text(
        'net: "net.prototxt"\nbase_lr: 0.01 momentum: 0.9\n'
        'weight_decay: 0.0005 lr_policy: "inv" gamma: 0.0001 power: 0.75 display: 20 max_iter: 60\n'
        'snapshot_prefix: "lenet" random_seed: 5\n')
    train_df = spark.read.parquet(str(mnist / "train")).limit(5000)
    test_df = (spark.read.parquet(str(mnist / "test")).coalesce(1).limit(500)
               .withColumn("id", F.concat(F.lit("s"), F.monotonically_increasing_id().cast("string"))))

    est = GoCaffeEstimator(solver=str(solver), scoresBlob="ip2", applySoftmax=True)
    assert est.getOrDefault("clusterSize") == 1 and est.getOrDefault("syncMode") == "allreduce"
    pipeline = Pipeline(stages=[est]).fit(train_df)
    model = pipeline.stages[0]
    assert isinstance(model, GoCaffeModel)
    assert len(model.weights()) > 1_000_000
    out = model.transform(test_df).cache()
    assert out.columns == test_df.columns + ["prediction", "probability"]
    rows = out.select("id", "label", "prediction", "probability").collect()
    assert len(rows) == 500
    assert all(abs(sum(r.probability) - 1) < 1e-4 for r in rows)
    acc = sum(int(r.label) == r.prediction for r in rows) / len(rows)
    assert acc > 0.5, acc
    preds = [r.prediction for r in rows]

    model.save(str(tmp_path / "model"))
    loaded = GoCaffeModel.load(str(tmp_path / "model"))
    assert [r.prediction for r in loaded.transform(test_df).select("prediction").collect()] == preds

    # pyspark's PipelineModel.load finds the Python class of the JVM stage
    # com.gocaffe.ml.GoCaffeModel (the module com.gocaffe.ml).
    pipeline.save(str(tmp_path / "pipeline"))
    again = PipelineModel.load(str(tmp_path / "pipeline"))
    assert type(again.stages[0]) is GoCaffeModel
    assert again.stages[0].getOrDefault("scoresBlob") == "ip2"
    assert [r.prediction for r in again.transform(test_df).select("prediction").collect()] == preds

    # A new Python process and JVM, importing only pyspark.
    t0 = time.monotonic()
    script = textwrap.dedent(f"""
        import json, sys
        from pyspark.ml import PipelineModel
        from pyspark.sql import SparkSession
        spark = (SparkSession.builder.master("local[1]").appName("gocaffe-pytest-load")
                 .config("spark.jars", {spark.conf.get("spark.jars")!r})
                 .config("spark.plugins", "com.gocaffe.shim.GoCaffePlugin")
                 .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1").getOrCreate())
        pm = PipelineModel.load({str(tmp_path / "pipeline")!r})
        test_df = spark.read.parquet({str(mnist / "test")!r}).coalesce(1).limit(500)
        print("STAGE", type(pm.stages[0]).__module__, type(pm.stages[0]).__name__)
        print("PREDS", json.dumps([r.prediction for r in pm.transform(test_df).select("prediction").collect()]))
        spark.stop()
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in p.stdout.splitlines() if line.startswith(("STAGE ", "PREDS ")))
    assert lines["STAGE"] == "gocaffe.ml GoCaffeModel"
    assert json.loads(lines["PREDS"]) == preds
    print(f"PipelineModel.load in a new process: {time.monotonic() - t0:.1f} s")

    # gocaffe.test and gocaffe.features with the fitted weights on the same 500 rows.
    weights = tmp_path / "lenet.caffemodel"
    weights.write_bytes(model.weights())
    args = ["-conf", str(solver), "-model", str(weights), "-clusterSize", "1"]
    scores = {r.name: r.value for r in gocaffe.test(spark, args, test_df).collect()}
    assert set(scores) == {"accuracy", "loss"}, scores
    assert abs(scores["accuracy"] - acc) < 1e-6, (scores, acc)
    feats = gocaffe.features(spark, args + ["-features", "ip2"], test_df)
    assert feats.columns == ["id", "label", "ip2"]
    frows = feats.collect()
    assert [(r.id, r.label) for r in frows] == [(r.id, r.label) for r in rows]
    assert [float(max(range(10), key=r.ip2.__getitem__)) for r in frows] == preds
    with pytest.raises(gocaffe.GoCaffeError, match="-labelColumn 'digit' is not a column"):
        gocaffe.test(spark, args + ["-labelColumn", "digit"], test_df)


def test_estimator_rejects_bad_params(spark) -> None:
    from gocaffe import GoCaffeEstimator

    df = spark.createDataFrame([(1, bytes(784))], ["label", "data"])
    with pytest.raises(Exception, match="clusterSize"):
        GoCaffeEstimator(solver="/nonexistent/solver.prototxt", clusterSize=0).fit(df)
    with pytest.raises(Exception, match="inputCol column 'pixels'"):
        GoCaffeEstimator(solver="/nonexistent/solver.prototxt", inputCol="pixels").fit(df)
