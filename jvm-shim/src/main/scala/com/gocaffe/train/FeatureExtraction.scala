package com.gocaffe.train

import java.io.PrintStream
import java.nio.charset.StandardCharsets
import java.util.concurrent.TimeUnit

import scala.collection.mutable.ArrayBuffer
import scala.jdk.CollectionConverters._
import scala.util.control.NonFatal

import caffe.Caffe.Phase
import com.gocaffe.goexec.v1.{DataBinding, ErrorCode, FeaturesChunk, FeaturesRequest, PartitionKey, TrainerGrpc}
import com.gocaffe.shim.{CaffeOptions, GoExec, GoExecError}
import com.google.protobuf.ByteString
import io.grpc.Context
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.apache.spark.{SparkContext, SparkException, TaskContext}
import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.functions.{coalesce, col, lit, monotonically_increasing_id}
import org.apache.spark.sql.gocaffe.{FeatureFrames, GoCaffeSparkBridge}
import org.apache.spark.sql.types.{ArrayType, FloatType, StringType, StructField, StructType}
import org.slf4j.LoggerFactory

/** A test phase's result: the display line and each output's mean. */
final case class TestScores(line: String, means: Seq[(String, Double)])

object TestScores {
  /** Writes the result as CaffeOnSpark's -test does, one line per output
    * blob, `name: v1,v2,...` (the mean of each element), to path on any
    * Hadoop file system (replacing it). Returns the path written.
    */
  def write(path: String, s: TestScores, hadoop: Configuration): Path = {
    val Element = """(.*)\[(\d+)\]""".r
    val grouped = s.means.foldLeft(Vector.empty[(String, Vector[Double])]) { case (acc, (name, v)) =>
      val base = name match {
        case Element(b, _) => b
        case other         => other
      }
      acc.lastOption match {
        case Some((b, vs)) if b == base => acc.init :+ (b -> (vs :+ v))
        case _                          => acc :+ (base -> Vector(v))
      }
    }
    val text = grouped.map { case (name, vs) => s"$name: ${vs.mkString(",")}\n" }.mkString
    val p = new Path(path)
    new Snapshots(path, p.getName, hadoop).writeAtomically(p, text.getBytes(StandardCharsets.UTF_8))
    p.getFileSystem(hadoop).makeQualified(p)
  }
}

/** `-features`: runs the test net with the model's weights over the test
  * data layer's source, once per row, and writes one row per sample to
  * -output as JSON or Parquet: `SampleID` (the source's `id` column, or a
  * generated one) and one array-of-floats column per blob of -features
  * (plus -label's blob), as CaffeOnSpark does.
  */
final class FeatureExtraction(sc: SparkContext, opts: CaffeOptions, trainer: DistributedTrainer, out: PrintStream) {
  private val hadoop = sc.hadoopConfiguration
  private val spark = SparkSession.builder().getOrCreate()

  private def say(s: String): Unit = { out.println(s); out.flush() }

  /** Extracts and writes the features; returns the exit status. */
  def run(): Int = {
    val n = trainer.checkCluster()
    val spec = CaffeDataLayers.onSpark(CaffeFiles.loadSolver(opts.get("conf").get, hadoop), hadoop)
    val d = spec.testData.headOption.getOrElse(throw new GoCaffeException(
      s"${spec.solverPath}: -features runs the test net, but it has no data layer with a source"))
    val blobs = FeatureExtraction.blobs(opts)
    val model = if (opts.isTrain) trainer.modelPathOf(spec) else opts.get("model").get
    val weights = CaffeFiles.readBytes(model, hadoop)
    val output = FeatureExtraction.checkOutput(opts, hadoop)
    FeatureExtraction.checkBlobs(spec, blobs)
    val format = opts.outputFormat.toLowerCase
    val outPath = new Path(output)
    val fs = outPath.getFileSystem(hadoop)

    val src = DataSources.read(spark, d)
    val id =
      if (src.columns.contains("id")) coalesce(col("id").cast("string"), lit(""))
      else monotonically_increasing_id().cast("string")
    val df = src.withColumn(FeatureExtraction.IdColumn, id).repartition(n)
    val (rows, inSchema, tz) = FeatureFrames.internalRows(df)
    val idIndex = inSchema.fieldIndex(FeatureExtraction.IdColumn)
    val outSchema = FeatureExtraction.schema(blobs)
    val maxRecords = sc.getConf.getLong("spark.sql.execution.arrow.maxRecordsPerBatch", 10000L)
    val task = FeatureTask(s"${sc.applicationId}/features/${d.name}/${d.source}", d.name, d.layer.toByteArray,
      blobs, idIndex, inSchema, maxRecords, tz, outSchema, resize = opts.has("resize"), mean = CaffeFiles.meanOf(d, hadoop))
    val wB = sc.broadcast(weights)
    val solverB = sc.broadcast(spec.bytes)
    val count = sc.longAccumulator("GoCaffe feature rows")
    val desc = s"GoCaffe features ${blobs.mkString(",")} of $model"
    sc.setJobDescription(desc)
    say(s"GoCaffe: extracting ${blobs.mkString(", ")} with $model from ${d.source} (test net data layer ${d.name}, " +
      s"$n partitions) into $output as $format")
    val t0 = System.nanoTime()
    try {
      val features = rows.mapPartitionsWithIndex { (i, it) =>
        task.run(i, solverB.value, wB.value, it).map { r => count.add(1); r }
      }
      val staged = trainer.oneTaskPerExecutor(n).fold(features)(p => features.withResources(p))
      try FeatureFrames.dataFrame(spark, staged, outSchema).write.format(format).save(output)
      catch {
        case e: SparkException => throw FeatureExtraction.explain(e)
      }
    } finally {
      wB.destroy(); solverB.destroy()
    }
    say(f"GoCaffe: features of ${count.value} samples written to ${fs.makeQualified(outPath)} ($format, " +
      f"columns SampleID, ${blobs.mkString(", ")}) in ${(System.nanoTime() - t0) / 1e9}%.1f s")
    0
  }
}

object FeatureExtraction {
  /** The column carrying each row's SampleID from Spark to the feature task. */
  val IdColumn = "__gocaffe_sample_id"

  /** The -output directory (CaffeOnSpark's default: `output`), refused when
    * it exists already (Spark's default save mode); checked before training.
    */
  def checkOutput(opts: CaffeOptions, hadoop: Configuration): String = {
    val output = opts.get("output").getOrElse("output")
    val p = new Path(output)
    val fs = p.getFileSystem(hadoop)
    if (fs.exists(p))
      throw new GoCaffeException(s"-output $output (${fs.makeQualified(p)}) exists; remove it or give another path")
    output
  }

  /** Checks -output and the blob names before any work (training included). */
  def preflight(opts: CaffeOptions, hadoop: Configuration): Unit = {
    val problems = Seq(
      () => { checkOutput(opts, hadoop); () },
      () => checkBlobs(CaffeFiles.loadSolver(opts.get("conf").get, hadoop), blobs(opts))
    ).flatMap { check =>
      try { check(); None }
      catch { case e: GoCaffeException => Some(e.getMessage) }
    }
    if (problems.nonEmpty) throw new GoCaffeException(problems.mkString("; "))
  }

  /** Every blob must be a top of the test net (phase rules; goexec checks
    * stage and level rules too, when it builds the net).
    */
  def checkBlobs(spec: SolverSpec, blobs: Seq[String]): Unit = {
    val s = spec.solver
    val net =
      if (s.getTestNetParamCount > 0) s.getTestNetParam(0)
      else if (s.hasNetParam) s.getNetParam
      else throw new GoCaffeException(s"${spec.solverPath}: -features runs the test net, but the solver has none")
    val tops = net.getLayerList.asScala.toSeq.filter(CaffeFiles.inPhase(_, Phase.TEST))
      .flatMap(_.getTopList.asScala).distinct
    val missing = blobs.filterNot(tops.contains)
    if (missing.nonEmpty)
      throw new GoCaffeException(s"-features/-label: the test net of ${spec.solverPath} has no blob " +
        s"${missing.map("'" + _ + "'").mkString(", ")} (its blobs: ${tops.mkString(", ")})")
    if (blobs.contains("SampleID"))
      throw new GoCaffeException("-features: 'SampleID' is the name of the output's sample ID column, not a blob")
  }

  /** A failed feature job, with goexec's own message when a task had one. */
  def explain(e: SparkException): Exception = GoExecError.find(e) match {
    case Some(c) if c.code == ErrorCode.BAD_INPUT =>
      new GoCaffeException(s"feature extraction: ${c.where} refused its input: ${c.description}", e)
    case Some(c) => new GoCaffeException(s"feature extraction failed: ${c.where}: ${c.code}: ${c.description}", e)
    case None    => e
  }

  /** The blobs to extract: -features in order, then -label's unless listed
    * (CaffeOnSpark appends the label blob the same way).
    */
  def blobs(opts: CaffeOptions): Seq[String] = {
    val f = opts.features.distinct
    f ++ opts.get("label").map(_.trim).filter(l => l.nonEmpty && !f.contains(l))
  }

  /** The output DataFrame's schema: SampleID, then one float array per blob. */
  def schema(blobs: Seq[String]): StructType =
    StructType(StructField("SampleID", StringType, nullable = false) +:
      blobs.map(b => StructField(b, ArrayType(FloatType, containsNull = false), nullable = false)))
}

/** The executor side of -features for one partition; shipped in the task closure. */
final case class FeatureTask(
    dataset: String,
    layerName: String,
    layer: Array[Byte],
    blobs: Seq[String],
    idIndex: Int,
    inSchema: StructType,
    maxRecordsPerBatch: Long,
    timeZone: String,
    outSchema: StructType,
    resize: Boolean = false,
    mean: Array[Byte] = null) {

  /** Streams the partition to this executor's goexec, collecting each row's
    * SampleID on the way, asks goexec for the features of every row and
    * returns them as rows of outSchema.
    */
  def run(part: Int, solver: Array[Byte], weights: Array[Byte], rows: Iterator[InternalRow]): Iterator[InternalRow] = {
    val ctx = TaskContext.get()
    val ids = ArrayBuffer.empty[String]
    val tapped = rows.map { r => ids += r.getString(idIndex); r }
    val arrow = GoCaffeSparkBridge.arrowStream(tapped, inSchema, maxRecordsPerBatch, timeZone)
    val g = RankTask.goexec()
    // A key of this attempt's own: the partition is always streamed (so every
    // SampleID is seen) and dropped when the task ends.
    val key = PartitionKey.newBuilder().setDataset(s"$dataset/attempt-${ctx.taskAttemptId()}").setPartition(part).build()
    val call = Context.current().withCancellation()
    ctx.addTaskCompletionListener[Unit] { _ =>
      call.cancel(null)
      FeatureTask.drop(g, key)
    }
    val (n, _) = RankTask.reporting(g)(RankTask.ensurePartition(g, key.getDataset, part, layer, arrow, resize, mean = mean))
    if (n != ids.size)
      throw new IllegalStateException(s"partition $part: goexec on executor ${g.executorId} decoded $n rows, " +
        s"Spark sent ${ids.size}")
    if (n == 0) return Iterator.empty
    val req = FeaturesRequest.newBuilder()
      .setSolver(ByteString.copyFrom(solver))
      .setTestNetIndex(0)
      .setWeights(ByteString.copyFrom(weights))
      .setData(DataBinding.newBuilder().setLayer(layerName).setKey(key))
      .addAllBlobs(blobs.asJava)
      .addAllSampleIds(ids.asJava)
      .build()
    ids.clear()
    val chunks: java.util.Iterator[FeaturesChunk] =
      RankTask.reporting(g)(g.call(call.call(() => FeatureTask.stub(g).features(req))))
    val streams = new Iterator[Array[Byte]] {
      private var next0 = 0L
      override def hasNext: Boolean = {
        val more = RankTask.reporting(g)(g.call(chunks.hasNext))
        if (!more && next0 != n)
          throw new IllegalStateException(s"partition $part: goexec on executor ${g.executorId} returned " +
            s"features of $next0 rows, the partition has $n")
        more
      }
      override def next(): Array[Byte] = {
        val c = RankTask.reporting(g)(g.call(chunks.next()))
        if (c.getFirstRow != next0)
          throw new IllegalStateException(s"partition $part: goexec sent rows from ${c.getFirstRow}, expected $next0")
        next0 += c.getRows
        c.getArrowIpc.toByteArray
      }
    }
    FeatureFrames.rowsOf(streams, outSchema)
  }
}

object FeatureTask {
  private val log = LoggerFactory.getLogger("com.gocaffe.train.FeatureTask")

  private def stub(g: GoExec): TrainerGrpc.TrainerBlockingStub = {
    g.ensureAlive()
    TrainerGrpc.newBlockingStub(g.channel).withMaxInboundMessageSize(RankTask.MaxMessage)
      .withMaxOutboundMessageSize(RankTask.MaxMessage)
  }

  /** Frees the partition in goexec; a goexec that died has nothing to free. */
  private def drop(g: GoExec, key: PartitionKey): Unit =
    try g.call(stub(g).withDeadlineAfter(60, TimeUnit.SECONDS).dropPartition(key))
    catch { case NonFatal(e) => log.warn(s"dropping ${key.getDataset}#${key.getPartition} in goexec: ${e.getMessage}") }
}
