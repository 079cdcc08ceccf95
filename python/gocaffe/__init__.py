"""GoCaffe from PySpark.

Pure Python: the calls go to GoCaffe's Scala API (``com.gocaffe.GoCaffe``)
through the py4j gateway PySpark already has, so nothing is compiled. The
Spark application must have GoCaffe's jar on its classpath and its plugin
running on the executors::

    spark = (SparkSession.builder
             .config("spark.jars", "build/libs/gocaffe.jar")
             .config("spark.plugins", "com.gocaffe.shim.GoCaffePlugin")
             .getOrCreate())
    train_df = spark.read.parquet("build/demo/mnist/train")
    test_df = spark.read.parquet("build/demo/mnist/test")
    gocaffe.train(spark, ["-conf", "lenet_solver.prototxt", "-model", "/tmp/lenet.caffemodel",
                          "-clusterSize", "1"], train_df, test_df)
    scores = gocaffe.test(spark, ["-conf", "lenet_solver.prototxt", "-model", "/tmp/lenet.caffemodel"], test_df)
    feats = gocaffe.features(spark, ["-conf", "lenet_solver.prototxt", "-model", "/tmp/lenet.caffemodel",
                                     "-features", "ip1,ip2"], test_df)
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from pyspark.sql import DataFrame, SparkSession


def __getattr__(name: str):
    # The Spark ML stages import pyspark.ml (which needs numpy) only when used.
    if name in ("GoCaffeEstimator", "GoCaffeModel"):
        from gocaffe import ml

        return getattr(ml, name)
    raise AttributeError(f"module 'gocaffe' has no attribute {name!r}")

__all__ = ["GoCaffeError", "GoCaffeEstimator", "GoCaffeModel", "features", "test", "train"]


class GoCaffeError(RuntimeError):
    """A problem GoCaffe reported (bad options, bad input, failed training);
    the message is GoCaffe's own."""


def _gocaffe(spark: SparkSession):
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise GoCaffeError("the SparkSession has no JVM gateway (is it stopped?)")
    return jvm.com.gocaffe.GoCaffe


def _args(spark: SparkSession, args: Sequence[str]) -> Any:
    if isinstance(args, str):
        raise TypeError("args is a sequence of options, not one string")
    jargs = spark.sparkContext._gateway.jvm.java.util.ArrayList()
    for a in args:
        jargs.add(str(a))
    return jargs


def _call(spark: SparkSession, method: str, *args: Any) -> Any:
    """Calls com.gocaffe.GoCaffe.<method>, turning GoCaffe's own exception
    into GoCaffeError."""
    from py4j.protocol import Py4JJavaError

    try:
        return getattr(_gocaffe(spark), method)(spark._jsparkSession, *args)
    except Py4JJavaError as e:
        j = e.java_exception
        if j.getClass().getName() == "com.gocaffe.train.GoCaffeException":
            raise GoCaffeError(str(j.getMessage())) from None
        raise


def train(spark: SparkSession, args: Sequence[str], train_data: DataFrame,
          test_data: Optional[DataFrame] = None) -> int:
    """Trains as ``GoCaffeRunner -train`` does, on ``train_data`` (and
    ``test_data`` for the test phases) in place of the sources the solver's
    data layers name.

    :param spark: the active session, started with GoCaffe's jar and plugin.
    :param args: GoCaffeRunner's options, e.g. ``["-conf", SOLVER, "-model",
        OUT.caffemodel, "-clusterSize", "2"]`` (``-train`` is implied).
    :param train_data: the train net's data, with the columns its data layer
        selects.
    :param test_data: the test net's data, or None.
    :returns: 0 when training finished (the model is at ``-model``, the
        validation curves beside it).
    :raises GoCaffeError: with GoCaffe's message when the options, the data
        or the training fail.
    """
    jargs = _args(spark, args)
    return int(_call(spark, "train", jargs, train_data._jdf, None if test_data is None else test_data._jdf))


def test(spark: SparkSession, args: Sequence[str], data: DataFrame) -> DataFrame:
    """Scores ``-model`` with the solver's test net on ``data``, as
    ``GoCaffeRunner -test`` does on the test net's source.

    The test net may be a deploy net (an ``Input`` layer, no loss): then
    ``-dataColumn`` (default ``data``) feeds its input, and the accuracy is
    the argmax of ``-scoresBlob`` (default: the net's only output) against
    ``-labelColumn`` (default ``label``).

    :param spark: the active session, started with GoCaffe's jar and plugin.
    :param args: GoCaffeRunner's options, e.g. ``["-conf", SOLVER, "-model",
        W.caffemodel]`` (``-test`` is implied).
    :param data: the rows to score.
    :returns: one row per score as ``-test`` prints them: ``name`` (e.g.
        ``accuracy``, ``loss``, ``prob[3]``) and ``value`` (a double).
    :raises GoCaffeError: with GoCaffe's message (a missing column, a blob the
        net lacks, bad options, a failed job).
    """
    from pyspark.sql import DataFrame as DF

    return DF(_call(spark, "test", _args(spark, args), data._jdf), spark)


def features(spark: SparkSession, args: Sequence[str], data: DataFrame) -> DataFrame:
    """Extracts the blobs of ``-features`` (and ``-label``'s) for every row
    of ``data`` with ``-model``'s weights, as ``GoCaffeRunner -features``
    does, and returns them instead of writing them.

    :param spark: the active session, started with GoCaffe's jar and plugin.
    :param args: GoCaffeRunner's options, e.g. ``["-conf", SOLVER, "-model",
        W.caffemodel, "-features", "ip1,prob"]``; a deploy net takes
        ``-dataColumn`` and ``-labelColumn`` as in :func:`test`.
    :param data: the rows to run the test net on.
    :returns: the rows of ``data`` in the same order and number: its ``id``
        and label column (those it has), then one ``array<float>`` column per
        blob.
    :raises GoCaffeError: with GoCaffe's message.
    """
    from pyspark.sql import DataFrame as DF

    return DF(_call(spark, "features", _args(spark, args), data._jdf), spark)
