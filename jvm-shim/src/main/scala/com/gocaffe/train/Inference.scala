package com.gocaffe.train

import java.util.UUID

import scala.collection.mutable.ArrayBuffer
import scala.jdk.CollectionConverters._

import caffe.Caffe.{LayerParameter, MemoryDataParameter, NetParameter, Phase, SolverParameter}
import com.gocaffe.shim.CaffeOptions
import org.apache.hadoop.conf.Configuration
import org.apache.spark.sql.{Column, DataFrame}
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow
import org.apache.spark.sql.functions.{col, lit}
import org.apache.spark.sql.gocaffe.FeatureFrames
import org.apache.spark.sql.types.{ArrayType, FloatType, StringType, StructField, StructType}
import org.apache.spark.unsafe.types.UTF8String

/** The test net of a solver made ready for a DataFrame: the solver to send
  * to goexec (a deploy net's Input layer replaced by a fed MemoryData
  * layer), its fed data layer, and the DataFrame columns that feed it, by
  * the names the layer reads them.
  */
final case class InferenceRun(spec: SolverSpec, layer: DataLayer, feed: Seq[(String, Column)], deploy: Boolean) {
  /** The DataFrame narrowed to the fed columns. */
  def frame(data: DataFrame): DataFrame = data.select(feed.map { case (n, c) => c.as(n) }: _*)
}

/** -test and -features on a DataFrame (GoCaffe.test, GoCaffe.features).
  *
  * A net with a data layer (MemoryData, CoSData) reads the DataFrame as it
  * reads its source; for a MemoryData layer -dataColumn and -labelColumn
  * name the columns that stand for its `data` and `label`. A deploy net
  * (an Input layer, no data layer) gets a MemoryData layer in place of its
  * Input layer, with the Input layer's name, top and shape (first axis: the
  * batch), fed from -dataColumn (a numeric array or raw bytes per row, as
  * the Input layer takes them: preprocessed) and -labelColumn; for -test an
  * Accuracy layer compares the argmax of -scoresBlob with the label.
  */
object Inference {
  /** The label top a deploy net's fed layer adds. */
  val LabelTop = "__gocaffe_label"

  private def testNetOf(s: SolverParameter): Option[NetParameter] =
    if (s.getTestNetParamCount > 0) Some(s.getTestNetParam(0))
    else if (s.hasNetParam) Some(s.getNetParam)
    else None

  private def withTestNet(s: SolverParameter, net: NetParameter): SolverParameter =
    if (s.getTestNetParamCount > 0) s.toBuilder.setTestNetParam(0, net).build()
    else s.toBuilder.setNetParam(net).build()

  private def testLayers(net: NetParameter): Seq[LayerParameter] =
    net.getLayerList.asScala.toSeq.filter(CaffeFiles.inPhase(_, Phase.TEST))

  /** The blobs of a net's test phase. */
  def blobsOf(net: NetParameter): Seq[String] = testLayers(net).flatMap(_.getTopList.asScala).distinct

  /** A net's outputs in the test phase: tops no later layer takes. */
  def outputsOf(net: NetParameter): Seq[String] = {
    val ls = testLayers(net)
    val bottoms = ls.flatMap(_.getBottomList.asScala).toSet
    ls.flatMap(_.getTopList.asScala).distinct.filterNot(bottoms)
  }

  /** The Input layer of a deploy net (one with no data layer with a source). */
  def inputOf(net: NetParameter): Option[LayerParameter] =
    if (CaffeFiles.dataLayers(net, Phase.TEST).nonEmpty) None
    else testLayers(net).find(_.getType == "Input")

  /** The deploy net with its Input layer fed from a DataFrame, and an
    * Accuracy layer on scores when given.
    */
  def fed(solverPath: String, net: NetParameter, input: LayerParameter, scores: Option[String]): NetParameter = {
    val where = s"$solverPath: the deploy net's Input layer '${input.getName}'"
    if (input.getTopCount != 1)
      throw new GoCaffeException(s"$where has ${input.getTopCount} tops; GoCaffe feeds a deploy net with one input")
    val ip = input.getInputParam
    if (ip.getShapeCount != 1)
      throw new GoCaffeException(s"$where gives ${ip.getShapeCount} shapes; want one (batch, channels, height, width)")
    val dims = ip.getShape(0).getDimList.asScala.map(_.longValue).toSeq
    if (dims.isEmpty || dims.size > 4 || dims.exists(d => d <= 0 || d > Int.MaxValue))
      throw new GoCaffeException(s"$where has shape ${dims.mkString("[", ", ", "]")}; want 1 to 4 positive " +
        "dimensions, the first the batch")
    def dim(i: Int): Int = if (i < dims.size) dims(i).toInt else 1
    val md = LayerParameter.newBuilder().setName(input.getName).setType("MemoryData")
      .addTop(input.getTop(0)).addTop(LabelTop)
      .addAllInclude(input.getIncludeList).addAllExclude(input.getExcludeList)
      .setMemoryDataParam(MemoryDataParameter.newBuilder().setSource("dataframe").setBatchSize(dim(0))
        .setChannels(dim(1)).setHeight(dim(2)).setWidth(dim(3)))
      .build()
    val b = net.toBuilder
    b.setLayer(net.getLayerList.indexOf(input), md)
    scores.foreach { s =>
      b.addLayer(LayerParameter.newBuilder().setName("__gocaffe_accuracy").setType("Accuracy")
        .addBottom(s).addBottom(LabelTop).addTop("accuracy"))
    }
    b.build()
  }

  /** Prepares the solver of -conf for a DataFrame with these columns;
    * `scoring`: for -test (a deploy net then needs the label column and
    * scores one blob).
    */
  def prepare(opts: CaffeOptions, columns: Seq[String], hadoop: Configuration, scoring: Boolean,
              what: String): InferenceRun = {
    val spec = CaffeFiles.loadSolver(opts.get("conf").get, hadoop, training = false)
    val path = spec.solverPath
    val net = testNetOf(spec.solver).getOrElse(
      throw new GoCaffeException(s"$what: $path has no test net (test_net, test_net_param, net or net_param)"))
    val dataCol = opts.get("dataColumn").getOrElse("data")
    val labelCol = opts.get("labelColumn").getOrElse("label")
    def need(c: String, opt: String): Unit =
      if (!columns.contains(c))
        throw new GoCaffeException(s"$what: $opt '$c' is not a column of the DataFrame (its columns: " +
          s"${columns.mkString(", ")})")
    def label: Column = if (columns.contains(labelCol)) col(s"`$labelCol`") else lit(0)
    inputOf(net) match {
      case Some(input) =>
        need(dataCol, "-dataColumn")
        if (scoring) need(labelCol, "-labelColumn")
        val scores = if (!scoring) None else Some(opts.get("scoresBlob").getOrElse {
          outputsOf(net) match {
            case Seq(one) => one
            case outs => throw new GoCaffeException(s"$what: the deploy net of $path has outputs " +
              s"${outs.mkString(", ")}; name the one to score with -scoresBlob")
          }
        })
        scores.foreach { s =>
          if (!blobsOf(net).contains(s) || s == input.getTop(0))
            throw new GoCaffeException(s"$what: the deploy net of $path has no blob '$s' (-scoresBlob; its blobs: " +
              s"${blobsOf(net).filterNot(_ == input.getTop(0)).mkString(", ")})")
        }
        val solver = withTestNet(spec.solver, fed(path, net, input, scores))
        val d = CaffeFiles.dataLayers(testNetOf(solver).get, Phase.TEST).head
        InferenceRun(SolverSpec(path, solver, Nil, Seq(d)), d, Seq("data" -> col(s"`$dataCol`"), "label" -> label),
          deploy = true)
      case None =>
        if (opts.has("scoresBlob"))
          throw new GoCaffeException(s"$what: -scoresBlob is for deploy nets; the test net of $path has a data " +
            "layer and scores with its own layers (e.g. Accuracy)")
        val d = spec.testData.headOption.getOrElse(throw new GoCaffeException(s"$what: the test net of $path has " +
          "neither a data layer with a source nor an Input layer"))
        val feed = d.layer.getType match {
          case "CoSData" =>
            val tops = d.layer.getCosDataParam.getTopList.asScala.map(_.getName).toSeq
            tops.foreach(need(_, s"CoSData layer '${d.name}' top"))
            tops.map(t => t -> col(s"`$t`"))
          case _ =>
            need(dataCol, "-dataColumn")
            if (scoring) need(labelCol, "-labelColumn")
            // An ImageDataFrame's per-row image description goes along.
            val extra = if (dataCol != "data") Nil
              else Seq("channels", "height", "width", "encoded").filter(columns.contains)
            Seq("data" -> col(s"`$dataCol`"), "label" -> label) ++ extra.map(c => c -> col(c))
        }
        InferenceRun(spec.copy(trainData = Nil), d, feed, deploy = false)
    }
  }
}

/** A test net run over a DataFrame's own partitions (no shuffle), each in
  * its executor's goexec through the Features RPC.
  */
object FrameOutputs {

  /** df with one array<float> column per blob appended (named as the
    * blob): every input row and column, in order. feed: the columns the data
    * layer reads, by the names it reads them. A task holds its partition's
    * rows while goexec computes them.
    */
  def append(df: DataFrame, feed: Seq[(String, Column)], solver: Array[Byte], layer: LayerParameter,
             weights: Array[Byte], blobs: Seq[String], dataset: String): DataFrame = {
    val spark = df.sparkSession
    val tmp = feed.map(_ => "__gocaffe_" + UUID.randomUUID().toString.replace("-", ""))
    val work = feed.zip(tmp).foldLeft(df) { case (w, ((_, c), t)) => w.withColumn(t, c) }
    val (rows, schema, tz) = FeatureFrames.internalRows(work)
    val nIn = df.schema.length
    val idx = tmp.map(schema.fieldIndex).toIndexedSeq
    val types = idx.map(i => schema(i).dataType)
    val narrow = StructType(feed.indices.map(k => StructField(feed(k)._1, types(k), schema(idx(k)).nullable)) :+
      StructField(FeatureExtraction.IdColumn, StringType, nullable = false))
    val featSchema = FeatureExtraction.schema(blobs)
    val sc = spark.sparkContext
    val maxRecords = sc.getConf.getLong("spark.sql.execution.arrow.maxRecordsPerBatch", 10000L)
    val task = FeatureTask(dataset, layer.getName, layer.toByteArray, blobs, feed.size, narrow, maxRecords, tz,
      featSchema)
    val solverB = sc.broadcast(solver)
    val wB = sc.broadcast(weights)
    val joinedSchema = StructType(df.schema.fields ++
      blobs.map(b => StructField(b, ArrayType(FloatType, containsNull = false), nullable = false)))
    val inTypes = df.schema.fields.map(_.dataType)
    val nBlobs = blobs.size
    val joined = rows.mapPartitionsWithIndex { (part, it) =>
      val held = ArrayBuffer.empty[InternalRow]
      val in = it.map { r =>
        val c = r.copy()
        val id = held.size
        held += c
        val vals = new Array[Any](idx.size + 1)
        var k = 0
        while (k < idx.size) { vals(k) = c.get(idx(k), types(k)); k += 1 }
        vals(idx.size) = UTF8String.fromString(id.toString)
        new GenericInternalRow(vals): InternalRow
      }
      val out = task.run(part, solverB.value, wB.value, in)
      var k = 0
      out.map { f =>
        val id = f.getUTF8String(0).toString
        if (k >= held.size || id != k.toString)
          throw new IllegalStateException(s"partition $part: goexec returned sample $id at position $k")
        val src = held(k)
        held(k) = null
        k += 1
        val vals = new Array[Any](nIn + nBlobs)
        var i = 0
        while (i < nIn) { vals(i) = src.get(i, inTypes(i)); i += 1 }
        var b = 0
        while (b < nBlobs) { vals(nIn + b) = f.getArray(1 + b).copy(); b += 1 }
        new GenericInternalRow(vals): InternalRow
      }
    }
    FeatureFrames.dataFrame(spark, joined, joinedSchema)
  }
}
