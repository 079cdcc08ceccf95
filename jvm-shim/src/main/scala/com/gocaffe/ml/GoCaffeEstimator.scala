package com.gocaffe.ml

import java.nio.charset.StandardCharsets
import java.nio.file.Files

import caffe.Caffe.{LayerParameter, NetParameter, Phase, SolverParameter}
import com.gocaffe.GoCaffe
import com.gocaffe.shim.GoExec
import com.gocaffe.train.{CaffeFiles, DataLayer, GoCaffeException}
import com.google.protobuf.TextFormat
import org.apache.spark.ml.Estimator
import org.apache.spark.ml.param.{BooleanParam, DoubleParam, IntParam, Param, ParamMap, ParamValidators, Params, StringArrayParam}
import org.apache.spark.ml.util.{DefaultParamsReadable, DefaultParamsWritable, Identifiable}
import org.apache.spark.sql.Dataset
import org.apache.spark.sql.functions.{col, rand}
import org.apache.spark.sql.types.{ArrayType, DoubleType, FloatType, StructField, StructType}
import org.apache.spark.ml.linalg.SQLDataTypes.VectorType

/** The parameters GoCaffeEstimator and GoCaffeModel share. */
trait GoCaffeParams extends Params {

  /** The solver prototxt (any Hadoop file system path); its train net's data
    * layer is fed from the DataFrame given to fit, its test net's first data
    * layer from the DataFrame given to transform.
    */
  final val solver: Param[String] = new Param[String](this, "solver",
    "solver prototxt path (any Hadoop file system)", (s: String) => s != null && s.trim.nonEmpty)

  /** The column fed to the data layer's first top (the image or features). */
  final val inputCol: Param[String] = new Param[String](this, "inputCol",
    "column fed to the data layer's first top", (s: String) => s != null && s.nonEmpty)

  /** The column fed to the data layer's second top (the label). */
  final val labelCol: Param[String] = new Param[String](this, "labelCol",
    "column fed to the data layer's second top (zeros when transform's input has none)",
    (s: String) => s != null && s.nonEmpty)

  /** The test-net blob whose argmax is the prediction. */
  final val scoresBlob: Param[String] = new Param[String](this, "scoresBlob",
    "test-net blob of class scores: its argmax is `prediction`", (s: String) => s != null && s.nonEmpty)

  /** Whether probability is the softmax of scoresBlob (false: the blob as is, e.g. a Softmax layer's top). */
  final val applySoftmax: BooleanParam = new BooleanParam(this, "applySoftmax",
    "probability = softmax(scoresBlob) (true) or scoresBlob itself (false)")

  /** More test-net blobs transform adds, one array<float> column each, named as the blob. */
  final val outputBlobs: StringArrayParam = new StringArrayParam(this, "outputBlobs",
    "more test-net blobs to add as array<float> columns", (a: Array[String]) => a.forall(_.nonEmpty))

  final val predictionCol: Param[String] = new Param[String](this, "predictionCol", "prediction column name",
    (s: String) => s != null && s.nonEmpty)

  final val probabilityCol: Param[String] = new Param[String](this, "probabilityCol", "probability column name",
    (s: String) => s != null && s.nonEmpty)

  /** Executors (ranks) that train: GoCaffe's -clusterSize. */
  final val clusterSize: IntParam = new IntParam(this, "clusterSize",
    "number of executors that train (one rank each)", ParamValidators.gtEq(1))

  /** allreduce or average: spark.gocaffe.sync.mode for this fit. */
  final val syncMode: Param[String] = new Param[String](this, "syncMode",
    "weight synchronisation: allreduce or average", ParamValidators.inArray(Array("allreduce", "average")))

  /** The solver's base_lr for this fit, when set (a TrainValidationSplit or CrossValidator grid can tune it). */
  final val baseLr: DoubleParam = new DoubleParam(this, "baseLr",
    "overrides the solver's base_lr when set", ParamValidators.gt(0))

  /** Whether fit shuffles the rows first: goexec reads each partition in order, and a DataFrame
    * that arrives sorted (randomSplit sorts its partitions, so every TrainValidationSplit and
    * CrossValidator fold does) gives one-class batches that can make training diverge.
    */
  final val shuffle: BooleanParam = new BooleanParam(this, "shuffle",
    "shuffle the rows before training (seeded by the solver's random_seed)")

  setDefault(shuffle -> true)
  setDefault(inputCol -> "data", labelCol -> "label", scoresBlob -> "prob", applySoftmax -> false,
    outputBlobs -> Array.empty[String], predictionCol -> "prediction", probabilityCol -> "probability",
    clusterSize -> 1, syncMode -> "allreduce")

  def getSolver: String = $(solver)
  def getInputCol: String = $(inputCol)
  def getLabelCol: String = $(labelCol)
  def getScoresBlob: String = $(scoresBlob)
  def getApplySoftmax: Boolean = $(applySoftmax)
  def getOutputBlobs: Array[String] = $(outputBlobs)
  def getPredictionCol: String = $(predictionCol)
  def getProbabilityCol: String = $(probabilityCol)
  def getClusterSize: Int = $(clusterSize)
  def getSyncMode: String = $(syncMode)
  def getBaseLr: Double = $(baseLr)
  def getShuffle: Boolean = $(shuffle)

  /** The columns transform adds, checked against the input's. */
  protected def outputSchema(in: StructType): StructType = {
    val added = Seq(StructField($(predictionCol), DoubleType, nullable = false),
      StructField($(probabilityCol), VectorType, nullable = false)) ++
      $(outputBlobs).distinct.map(b => StructField(b, ArrayType(FloatType, containsNull = false), nullable = false))
    val clash = added.map(_.name).filter(in.fieldNames.contains)
    if (clash.nonEmpty)
      throw new IllegalArgumentException(s"GoCaffe: the input already has column(s) ${clash.mkString(", ")} " +
        "that transform would add; rename them or set predictionCol/probabilityCol/outputBlobs")
    val dup = added.map(_.name).diff(added.map(_.name).distinct)
    if (dup.nonEmpty) throw new IllegalArgumentException(s"GoCaffe: output column(s) ${dup.mkString(", ")} named twice")
    StructType(in.fields ++ added)
  }

  protected def requireInput(in: StructType, name: String, what: String): Unit =
    if (!in.fieldNames.contains(name))
      throw new IllegalArgumentException(s"GoCaffe: $what column '$name' is not in the input (its columns: " +
        s"${in.fieldNames.mkString(", ")})")
}

/** Trains a Caffe net with GoCaffe on a DataFrame, as a Spark ML Estimator.
  *
  * {{{
  * val est = new GoCaffeEstimator().setSolver("hdfs:///lenet_solver.prototxt")
  *   .setInputCol("data").setLabelCol("label").setScoresBlob("ip2").setApplySoftmax(true).setClusterSize(2)
  * val model = new Pipeline().setStages(Array(est)).fit(train)
  * model.transform(test).select("label", "prediction", "probability")
  * }}}
  *
  * fit runs `GoCaffe.train` with the DataFrame's inputCol and labelCol in
  * place of the train net's data layer's tops (the layer's `source` is not
  * read; its test phase, if the solver has one, reads its own source) and
  * keeps the trained weights in the model. The application must start with
  * GoCaffe's plugin (`spark.plugins=com.gocaffe.shim.GoCaffePlugin`).
  */
final class GoCaffeEstimator(override val uid: String) extends Estimator[GoCaffeModel] with GoCaffeParams
  with DefaultParamsWritable {

  def this() = this(Identifiable.randomUID("gocaffe"))

  def setSolver(v: String): this.type = set(solver, v)
  def setInputCol(v: String): this.type = set(inputCol, v)
  def setLabelCol(v: String): this.type = set(labelCol, v)
  def setScoresBlob(v: String): this.type = set(scoresBlob, v)
  def setApplySoftmax(v: Boolean): this.type = set(applySoftmax, v)
  def setOutputBlobs(v: Array[String]): this.type = set(outputBlobs, v)
  def setPredictionCol(v: String): this.type = set(predictionCol, v)
  def setProbabilityCol(v: String): this.type = set(probabilityCol, v)
  def setClusterSize(v: Int): this.type = set(clusterSize, v)
  def setSyncMode(v: String): this.type = set(syncMode, v)
  def setBaseLr(v: Double): this.type = set(baseLr, v)
  def setShuffle(v: Boolean): this.type = set(shuffle, v)

  override def transformSchema(schema: StructType): StructType = {
    if (!isDefined(solver)) throw new IllegalArgumentException("GoCaffeEstimator: solver is not set")
    requireInput(schema, $(inputCol), "inputCol")
    requireInput(schema, $(labelCol), "labelCol")
    outputSchema(schema)
  }

  override def fit(dataset: Dataset[_]): GoCaffeModel = {
    transformSchema(dataset.schema, logging = true)
    val spark = dataset.sparkSession
    val hadoop = spark.sparkContext.hadoopConfiguration
    GoCaffe.requirePlugin(spark, "GoCaffeEstimator.fit")
    val spec = CaffeFiles.loadSolver($(solver), hadoop)
    val (dataTop, labelTop) = GoCaffeEstimator.tops(spec.trainData.head, spec.solverPath)
    val test = GoCaffeEstimator.testLayer(spec.solver, spec.solverPath)
    val blobs = ($(scoresBlob) +: $(outputBlobs).toIndexedSeq).distinct
    GoCaffeEstimator.checkBlobs(spec.solver, spec.solverPath, blobs)
    val selected = dataset.select(col($(inputCol)).as(dataTop), col($(labelCol)).as(labelTop))
    val train = if ($(shuffle)) selected.orderBy(rand(spec.solver.getRandomSeed)) else selected
    val dir = Files.createTempDirectory("gocaffe-fit-")
    try {
      val model = dir.resolve("model.caffemodel").toUri.toString
      // With baseLr set, the solver (its nets inlined) is written with that base_lr beside the model.
      val solverArg = if (!isDefined(baseLr)) $(solver) else {
        val f = dir.resolve("solver.prototxt")
        val s = spec.solver.toBuilder.setBaseLr($(baseLr).toFloat).build()
        Files.write(f, TextFormat.printer().printToString(s).getBytes(StandardCharsets.UTF_8))
        f.toString
      }
      val status = GoCaffe.train(spark, Seq("-conf", solverArg, "-model", model, "-clusterSize", $(clusterSize).toString),
        train, None, Some($(syncMode)))
      if (status != 0) throw new GoCaffeException(s"GoCaffeEstimator.fit: training ${spec.solverPath} exited $status")
      val weights = CaffeFiles.readBytes(model, hadoop)
      copyValues(new GoCaffeModel(uid, spec.solver, test.getName, weights).setParent(this))
    } finally GoExec.deleteTree(dir)
  }

  override def copy(extra: ParamMap): GoCaffeEstimator = defaultCopy(extra)
}

object GoCaffeEstimator extends DefaultParamsReadable[GoCaffeEstimator] {

  override def load(path: String): GoCaffeEstimator = super.load(path)

  /** The test net of a solver with its nets inlined (CaffeFiles.loadSolver's). */
  private[ml] def testNet(s: SolverParameter, solverPath: String): NetParameter =
    if (s.getTestNetParamCount > 0) s.getTestNetParam(0)
    else if (s.hasNetParam) s.getNetParam
    else throw new GoCaffeException(s"$solverPath: the solver has no test net for transform")

  /** The test net's first data layer: transform feeds it. */
  private[ml] def testLayer(s: SolverParameter, solverPath: String): LayerParameter =
    CaffeFiles.dataLayers(testNet(s, solverPath), Phase.TEST).headOption.map(_.layer).getOrElse(
      throw new GoCaffeException(s"$solverPath: the test net has no data layer with a source (transform feeds it)"))

  /** The data and label tops a data layer reads from DataFrame columns. */
  private[ml] def tops(d: DataLayer, solverPath: String): (String, String) = tops(d.layer, solverPath)

  private[ml] def tops(l: LayerParameter, solverPath: String): (String, String) = {
    val names =
      if (l.getType == "CoSData") (0 until l.getCosDataParam.getTopCount).map(l.getCosDataParam.getTop(_).getName)
      else (0 until l.getTopCount).map(l.getTop)
    if (names.size != 2)
      throw new GoCaffeException(s"$solverPath: data layer '${l.getName}' has ${names.size} tops; GoCaffeEstimator " +
        "feeds two (inputCol and labelCol)")
    (names(0), names(1))
  }

  /** Every blob must be a top of the test net. */
  private[ml] def checkBlobs(s: SolverParameter, solverPath: String, blobs: Seq[String]): Unit = {
    val net = testNet(s, solverPath)
    val tops = (0 until net.getLayerCount).map(net.getLayer).filter { l =>
      (0 until l.getIncludeCount).forall(i => !l.getInclude(i).hasPhase || l.getInclude(i).getPhase == Phase.TEST) &&
        (0 until l.getExcludeCount).forall(i => !l.getExclude(i).hasPhase || l.getExclude(i).getPhase != Phase.TEST)
    }.flatMap(l => (0 until l.getTopCount).map(l.getTop)).distinct
    val missing = blobs.filterNot(tops.contains)
    if (missing.nonEmpty)
      throw new GoCaffeException(s"$solverPath: the test net has no blob ${missing.map("'" + _ + "'").mkString(", ")} " +
        s"(scoresBlob/outputBlobs; its blobs: ${tops.mkString(", ")})")
  }
}
