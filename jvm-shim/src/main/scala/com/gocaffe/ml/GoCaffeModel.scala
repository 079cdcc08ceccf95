package com.gocaffe.ml

import java.nio.charset.StandardCharsets

import caffe.Caffe.SolverParameter
import com.gocaffe.GoCaffe
import com.gocaffe.train.{FeatureExtraction, FrameOutputs, GoCaffeException, Snapshots}
import com.google.protobuf.TextFormat
import org.apache.hadoop.fs.Path
import org.apache.spark.SparkException
import org.apache.spark.ml.Model
import org.apache.spark.ml.linalg.{Vector, Vectors}
import org.apache.spark.ml.param.{ParamMap, ParamPair}
import org.apache.spark.ml.util.{MLReadable, MLReader, MLWritable, MLWriter}
import org.apache.spark.sql.{DataFrame, Dataset}
import org.apache.spark.sql.functions.{col, lit, udf}
import org.apache.spark.sql.types.StructType

/** A net trained by GoCaffeEstimator: the solver (nets inlined) and the
  * trained weights (.caffemodel bytes).
  *
  * transform runs the solver's test net with these weights over every row,
  * per partition through the executor's goexec (the same Features RPC as
  * `-features`), and returns every input column and row with `prediction`
  * (argmax of scoresBlob, as a double), `probability` (a Vector) and one
  * array<float> column per blob of outputBlobs. A partition's rows are held
  * in the task's memory while goexec computes their outputs.
  *
  * save writes Spark ML's `metadata/` (class, uid, params), `solver.prototxt`
  * (the solver with its nets inlined) and `model.caffemodel`; the two Caffe
  * files open in Caffe, `goexec test` or `goexec export`.
  */
final class GoCaffeModel private[ml] (override val uid: String, val solverParam: SolverParameter,
                                      val dataLayerName: String, private[ml] val weightsBytes: Array[Byte])
  extends Model[GoCaffeModel] with GoCaffeParams with MLWritable {

  /** The trained weights, a Caffe .caffemodel (NetParameter) */
  def weights: Array[Byte] = weightsBytes.clone()

  def setScoresBlob(v: String): this.type = set(scoresBlob, v)
  def setApplySoftmax(v: Boolean): this.type = set(applySoftmax, v)
  def setOutputBlobs(v: Array[String]): this.type = set(outputBlobs, v)
  def setInputCol(v: String): this.type = set(inputCol, v)
  def setLabelCol(v: String): this.type = set(labelCol, v)
  def setPredictionCol(v: String): this.type = set(predictionCol, v)
  def setProbabilityCol(v: String): this.type = set(probabilityCol, v)

  override def transformSchema(schema: StructType): StructType = {
    requireInput(schema, $(inputCol), "inputCol")
    outputSchema(schema)
  }

  override def transform(dataset: Dataset[_]): DataFrame = {
    val outSchema = transformSchema(dataset.schema, logging = true)
    val df = dataset.toDF()
    val spark = df.sparkSession
    GoCaffe.requirePlugin(spark, "GoCaffeModel.transform")
    val solverPath = s"GoCaffeModel $uid"
    val layer = GoCaffeEstimator.testLayer(solverParam, solverPath)
    if (layer.getName != dataLayerName)
      throw new GoCaffeException(s"$solverPath: the test net's data layer is '${layer.getName}', the model was " +
        s"trained for '$dataLayerName'")
    val (dataTop, labelTop) = GoCaffeEstimator.tops(layer, solverPath)
    val extra = $(outputBlobs).toIndexedSeq.distinct.filter(_ != $(scoresBlob))
    val blobs = $(scoresBlob) +: extra
    GoCaffeEstimator.checkBlobs(solverParam, solverPath, blobs)

    val label = if (df.columns.contains($(labelCol))) col($(labelCol)) else lit(0)
    val raw = FrameOutputs.append(df, Seq(dataTop -> col($(inputCol)), labelTop -> label), solverParam.toByteArray,
      layer, weightsBytes, blobs, s"${spark.sparkContext.applicationId}/transform/$uid")
    val soft = $(applySoftmax)
    val probability = udf { (s: Seq[Float]) => GoCaffeModel.probability(s, soft) }
    val prediction = udf { (s: Seq[Float]) => GoCaffeModel.argmax(s).toDouble }
    val scores = col(s"`${$(scoresBlob)}`")
    val withOut = raw.withColumn($(predictionCol), prediction(scores)).withColumn($(probabilityCol), probability(scores))
    val keep = outSchema.fieldNames.map(n => col(s"`$n`"))
    try withOut.select(keep.toIndexedSeq: _*)
    catch { case e: SparkException => throw FeatureExtraction.explain(e) }
  }

  override def copy(extra: ParamMap): GoCaffeModel =
    copyValues(new GoCaffeModel(uid, solverParam, dataLayerName, weightsBytes), extra).setParent(parent)

  override def write: MLWriter = new GoCaffeModel.Writer(this)

  private[ml] def setParam(p: ParamPair[_]): Unit = set(p)
}

object GoCaffeModel extends MLReadable[GoCaffeModel] {

  private[ml] def argmax(s: Seq[Float]): Int = {
    if (s.isEmpty) throw new IllegalArgumentException("GoCaffe: the scores blob of a sample is empty")
    var best = 0
    var i = 1
    while (i < s.length) { if (s(i) > s(best)) best = i; i += 1 }
    best
  }

  private[ml] def probability(s: Seq[Float], softmax: Boolean): Vector =
    if (!softmax) Vectors.dense(s.map(_.toDouble).toArray)
    else {
      val m = s.max.toDouble
      val e = s.map(v => math.exp(v - m))
      val z = e.sum
      Vectors.dense(e.map(_ / z).toArray)
    }

  // Spark ML's own metadata layout (PipelineModel.load reads the class name
  // from it): one JSON line in metadata/part-00000.
  private val MetadataFile = "metadata/part-00000"
  private val SolverFile = "solver.prototxt"
  private val WeightsFile = "model.caffemodel"

  private[ml] class Writer(m: GoCaffeModel) extends MLWriter {
    override protected def saveImpl(path: String): Unit = {
      import org.json4s._
      import org.json4s.jackson.JsonMethods.{compact, parse}
      val hadoop = sparkSession.sparkContext.hadoopConfiguration
      val dir = new Path(path)
      val params = m.params.toList.filter(p => m.isDefined(p)).map { p =>
        p.name -> parse(p.asInstanceOf[org.apache.spark.ml.param.Param[Any]].jsonEncode(m.getOrDefault(p)))
      }
      val meta = compact(JObject(
        "class" -> JString(classOf[GoCaffeModel].getName),
        "timestamp" -> JLong(System.currentTimeMillis()),
        "sparkVersion" -> JString(org.apache.spark.SPARK_VERSION),
        "uid" -> JString(m.uid),
        "paramMap" -> JObject(params),
        "defaultParamMap" -> JObject(),
        "dataLayer" -> JString(m.dataLayerName))) + "\n"
      val files = Seq(
        MetadataFile -> meta.getBytes(StandardCharsets.UTF_8),
        SolverFile -> TextFormat.printer().printToString(m.solverParam).getBytes(StandardCharsets.UTF_8),
        WeightsFile -> m.weightsBytes)
      files.foreach { case (name, bytes) =>
        val p = new Path(dir, name)
        new Snapshots(p.toString, p.getName, hadoop).writeAtomically(p, bytes)
      }
    }
  }

  private class Reader extends MLReader[GoCaffeModel] {
    override def load(path: String): GoCaffeModel = {
      import org.json4s._
      val hadoop = sparkSession.sparkContext.hadoopConfiguration
      val dir = new Path(path)
      def read(name: String): Array[Byte] = {
        val p = new Path(dir, name)
        val fs = p.getFileSystem(hadoop)
        if (!fs.exists(p)) throw new GoCaffeException(s"GoCaffeModel.load($path): no $name (${fs.makeQualified(p)})")
        val in = fs.open(p)
        try in.readAllBytes() finally in.close()
      }
      val metaText = new String(read(MetadataFile), StandardCharsets.UTF_8)
      val meta = try org.json4s.jackson.JsonMethods.parse(metaText) catch {
        case e: Exception => throw new GoCaffeException(s"GoCaffeModel.load($path): $MetadataFile is not JSON: ${e.getMessage}", e)
      }
      def str(key: String): String = meta \ key match {
        case JString(s) => s
        case _ => throw new GoCaffeException(s"GoCaffeModel.load($path): $MetadataFile has no string \"$key\"")
      }
      if (str("class") != classOf[GoCaffeModel].getName)
        throw new GoCaffeException(s"GoCaffeModel.load($path): $MetadataFile is of ${str("class")}")
      val solverText = new String(read(SolverFile), StandardCharsets.UTF_8)
      val sb = SolverParameter.newBuilder()
      try TextFormat.merge(solverText, sb) catch {
        case e: TextFormat.ParseException =>
          throw new GoCaffeException(s"GoCaffeModel.load($path): $SolverFile: ${e.getMessage}", e)
      }
      val m = new GoCaffeModel(str("uid"), sb.build(), str("dataLayer"), read(WeightsFile))
      meta \ "paramMap" match {
        case JObject(fields) => fields.foreach { case (name, v) =>
          if (!m.hasParam(name))
            throw new GoCaffeException(s"GoCaffeModel.load($path): $MetadataFile has unknown param \"$name\"")
          val p = m.getParam(name)
          val value = p.jsonDecode(org.json4s.jackson.JsonMethods.compact(v))
          m.setParam(ParamPair(p.asInstanceOf[org.apache.spark.ml.param.Param[Any]], value))
        }
        case _ => throw new GoCaffeException(s"GoCaffeModel.load($path): $MetadataFile has no \"paramMap\" object")
      }
      m
    }
  }

  override def read: MLReader[GoCaffeModel] = new Reader

  override def load(path: String): GoCaffeModel = super.load(path)
}
