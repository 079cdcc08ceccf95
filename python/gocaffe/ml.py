"""GoCaffe as a Spark ML stage from PySpark: thin ``pyspark.ml`` wrappers
of the Scala ``com.gocaffe.ml.GoCaffeEstimator`` and ``GoCaffeModel``.

Training, transform and persistence all happen in the JVM; these classes
only hold the params and call it through py4j, as ``pyspark.ml``'s own
wrappers do. A model saved here loads in Scala and the other way round.
"""
from __future__ import annotations

from typing import Any, List

from pyspark import keyword_only
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import JavaMLReadable, JavaMLReader, JavaMLWritable
from pyspark.ml.wrapper import JavaEstimator, JavaModel

__all__ = ["GoCaffeEstimator", "GoCaffeModel"]


class _GoCaffeParams(Params):
    """The params GoCaffeEstimator and GoCaffeModel share (see the Scala
    ``GoCaffeParams`` for what each means)."""

    solver: Param[str] = Param(Params._dummy(), "solver", "solver prototxt path (any Hadoop file system)",
                               typeConverter=TypeConverters.toString)
    inputCol: Param[str] = Param(Params._dummy(), "inputCol", "column fed to the data layer's first top",
                                 typeConverter=TypeConverters.toString)
    labelCol: Param[str] = Param(Params._dummy(), "labelCol", "column fed to the data layer's second top",
                                 typeConverter=TypeConverters.toString)
    scoresBlob: Param[str] = Param(Params._dummy(), "scoresBlob",
                                   "test-net blob of class scores: its argmax is the prediction",
                                   typeConverter=TypeConverters.toString)
    applySoftmax: Param[bool] = Param(Params._dummy(), "applySoftmax",
                                      "probability = softmax(scoresBlob) (True) or scoresBlob itself (False)",
                                      typeConverter=TypeConverters.toBoolean)
    outputBlobs: Param[List[str]] = Param(Params._dummy(), "outputBlobs",
                                          "more test-net blobs to add as array<float> columns",
                                          typeConverter=TypeConverters.toListString)
    predictionCol: Param[str] = Param(Params._dummy(), "predictionCol", "prediction column name",
                                      typeConverter=TypeConverters.toString)
    probabilityCol: Param[str] = Param(Params._dummy(), "probabilityCol", "probability column name",
                                       typeConverter=TypeConverters.toString)
    clusterSize: Param[int] = Param(Params._dummy(), "clusterSize", "number of executors that train",
                                    typeConverter=TypeConverters.toInt)
    syncMode: Param[str] = Param(Params._dummy(), "syncMode", "weight synchronisation: allreduce or average",
                                 typeConverter=TypeConverters.toString)
    baseLr: Param[float] = Param(Params._dummy(), "baseLr", "overrides the solver's base_lr when set",
                                 typeConverter=TypeConverters.toFloat)

    shuffle: Param[bool] = Param(Params._dummy(), "shuffle", "shuffle the rows before training",
                                 typeConverter=TypeConverters.toBoolean)

    def __init__(self, *args: Any):
        super().__init__(*args)
        self._setDefault(inputCol="data", labelCol="label", scoresBlob="prob", applySoftmax=False,
                         outputBlobs=[], predictionCol="prediction", probabilityCol="probability",
                         clusterSize=1, syncMode="allreduce", shuffle=True)


class _Reader(JavaMLReader):
    """Loads through the Scala class of the same name in com.gocaffe.ml."""

    @classmethod
    def _java_loader_class(cls, clazz: type) -> str:
        return "com.gocaffe.ml." + clazz.__name__


def _wrap(py: Any, java_stage: Any) -> Any:
    py._java_obj = java_stage
    py._resetUid(java_stage.uid())
    py._transfer_params_from_java()
    return py


class GoCaffeEstimator(JavaEstimator, _GoCaffeParams, JavaMLReadable, JavaMLWritable):
    """Trains a Caffe net with GoCaffe on a DataFrame (``fit`` returns a
    :class:`GoCaffeModel`). The Spark application needs GoCaffe's jar and
    ``spark.plugins=com.gocaffe.shim.GoCaffePlugin``.

    >>> est = GoCaffeEstimator(solver="lenet_solver.prototxt", scoresBlob="ip2",
    ...                        applySoftmax=True, clusterSize=2)  # doctest: +SKIP
    >>> model = est.fit(train_df)  # doctest: +SKIP
    >>> model.transform(test_df).select("label", "prediction", "probability")  # doctest: +SKIP
    """

    @keyword_only
    def __init__(self, *, solver: str | None = None, inputCol: str = "data", labelCol: str = "label",
                 scoresBlob: str = "prob", applySoftmax: bool = False, outputBlobs: List[str] | None = None,
                 predictionCol: str = "prediction", probabilityCol: str = "probability",
                 clusterSize: int = 1, syncMode: str = "allreduce", baseLr: float | None = None,
                 shuffle: bool = True):
        super().__init__()
        self._java_obj = self._new_java_obj("com.gocaffe.ml.GoCaffeEstimator", self.uid)
        kwargs = self._input_kwargs
        self._set(**{k: v for k, v in kwargs.items() if v is not None})

    def _create_model(self, java_model: Any) -> "GoCaffeModel":
        return GoCaffeModel(java_model)

    @classmethod
    def read(cls) -> JavaMLReader:
        return _Reader(cls)

    @classmethod
    def _from_java(cls, java_stage: Any) -> "GoCaffeEstimator":  # type: ignore[override]
        # pyspark's own _from_java maps org.apache.spark.* class names only.
        return _wrap(cls(), java_stage)

    def setSolver(self, value: str) -> "GoCaffeEstimator":
        return self._set(solver=value)

    def setScoresBlob(self, value: str) -> "GoCaffeEstimator":
        return self._set(scoresBlob=value)

    def setClusterSize(self, value: int) -> "GoCaffeEstimator":
        return self._set(clusterSize=value)

    def setBaseLr(self, value: float) -> "GoCaffeEstimator":
        return self._set(baseLr=value)


class GoCaffeModel(JavaModel, _GoCaffeParams, JavaMLReadable, JavaMLWritable):
    """A net trained by :class:`GoCaffeEstimator`: ``transform`` keeps every
    input row and column and adds ``prediction``, ``probability`` and the
    blobs of ``outputBlobs``; ``save`` writes Spark ML metadata, the solver
    prototxt and the .caffemodel."""

    @classmethod
    def read(cls) -> JavaMLReader:
        return _Reader(cls)

    @classmethod
    def _from_java(cls, java_stage: Any) -> "GoCaffeModel":  # type: ignore[override]
        return _wrap(cls(java_stage), java_stage)

    def weights(self) -> bytes:
        """The trained weights, a Caffe .caffemodel."""
        return bytes(self._java_obj.weights())
