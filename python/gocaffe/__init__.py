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
"""
from __future__ import annotations

from typing import Optional, Sequence

from pyspark.sql import DataFrame, SparkSession


def __getattr__(name: str):
    # The Spark ML stages import pyspark.ml (which needs numpy) only when used.
    if name in ("GoCaffeEstimator", "GoCaffeModel"):
        from gocaffe import ml

        return getattr(ml, name)
    raise AttributeError(f"module 'gocaffe' has no attribute {name!r}")

__all__ = ["GoCaffeError", "GoCaffeEstimator", "GoCaffeModel", "train"]


class GoCaffeError(RuntimeError):
    """A problem GoCaffe reported (bad options, bad input, failed training);
    the message is GoCaffe's own."""


def _gocaffe(spark: SparkSession):
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise GoCaffeError("the SparkSession has no JVM gateway (is it stopped?)")
    return jvm.com.gocaffe.GoCaffe


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
    from py4j.protocol import Py4JJavaError

    if isinstance(args, str):
        raise TypeError("args is a sequence of options, not one string")
    sc = spark.sparkContext
    jargs = sc._gateway.jvm.java.util.ArrayList()
    for a in args:
        jargs.add(str(a))
    try:
        return int(_gocaffe(spark).train(spark._jsparkSession, jargs, train_data._jdf,
                                         None if test_data is None else test_data._jdf))
    except Py4JJavaError as e:
        j = e.java_exception
        if j.getClass().getName() == "com.gocaffe.train.GoCaffeException":
            raise GoCaffeError(str(j.getMessage())) from None
        raise
