"""``com.gocaffe.ml`` as a Python module, so that PySpark's ML persistence
finds GoCaffe's stages.

PySpark loads a saved stage (``PipelineModel.load``, ``Pipeline.load``,
``CrossValidatorModel.load`` ...) by importing the Python class named like
the stage's JVM class, with only ``org.apache.spark`` mapped to ``pyspark``:
``com.gocaffe.ml.GoCaffeModel`` is looked up as the Python module
``com.gocaffe.ml``. This module is that name for the classes of
:mod:`gocaffe.ml`; ``com`` and ``com.gocaffe`` are namespace packages (no
``__init__.py``), so other distributions may share them.
"""
from gocaffe.ml import GoCaffeEstimator, GoCaffeModel

__all__ = ["GoCaffeEstimator", "GoCaffeModel"]
