package com.gocaffe

import scala.jdk.CollectionConverters._

import com.gocaffe.shim.{CaffeOptionParser, CaffeOptions, GoCaffePlugin, ParseResult}
import com.gocaffe.train.{CaffeFiles, DistributedTrainer, FeatureExtraction, FrameOutputs, GoCaffeException, Inference}
import org.apache.spark.sql.{DataFrame, Row, SparkSession}
import org.apache.spark.sql.functions.col
import org.apache.spark.sql.types.{DoubleType, StringType, StructField, StructType}

/** GoCaffe from a Spark program: train, test and extract features on
  * DataFrames the program already holds, in place of the sources the
  * solver's data layers name.
  *
  * {{{
  * // spark-shell --jars gocaffe.jar --conf spark.plugins=com.gocaffe.shim.GoCaffePlugin
  * val train = spark.read.parquet("hdfs:///mnist/train").where("label < 10")
  * val test  = spark.read.parquet("hdfs:///mnist/test")
  * com.gocaffe.GoCaffe.train(spark, Seq("-conf", "lenet_solver.prototxt",
  *   "-model", "hdfs:///models/lenet.caffemodel", "-clusterSize", "2"), train, Some(test))
  * com.gocaffe.GoCaffe.test(spark, Seq("-conf", "lenet_solver.prototxt",
  *   "-model", "hdfs:///models/lenet.caffemodel"), test).show()
  * com.gocaffe.GoCaffe.features(spark, Seq("-conf", "lenet_solver.prototxt",
  *   "-model", "hdfs:///models/lenet.caffemodel", "-features", "ip1,ip2"), test).show()
  * }}}
  *
  * The options are GoCaffeRunner's (`-train`/`-test` is implied). The
  * DataFrames take the place of the train net's and the test net's data
  * layer (each must still be a MemoryData/CoSData layer with a `source`,
  * which is not read); the layers' `dataframe_column_select` and schema
  * rules apply to them as to a source. test and features also take a deploy
  * net (an Input layer, no data layer): see [[com.gocaffe.train.Inference]].
  * GoCaffe's plugin must be on the executors, so the application has to
  * start with `spark.plugins` naming it.
  */
object GoCaffe {

  /** Trains as `GoCaffeRunner -train` does; returns 0, or throws
    * [[GoCaffeException]] with the problem (bad spark.gocaffe.* settings
    * come from DistributedTrainer's own check, all together).
    */
  def train(spark: SparkSession, args: Seq[String], trainData: DataFrame, testData: Option[DataFrame] = None): Int =
    train(spark, args, trainData, testData, None)

  /** [[train]] with spark.gocaffe.sync.mode overridden for this run ("allreduce" or "average"). */
  private[gocaffe] def train(spark: SparkSession, args: Seq[String], trainData: DataFrame, testData: Option[DataFrame],
                             syncMode: Option[String]): Int = {
    val opts = parse("GoCaffe.train", args, "train")
    if (opts.isTest || opts.isFeatures)
      throw new GoCaffeException("GoCaffe.train: trains only; run -test and -features with GoCaffe.test and GoCaffe.features")
    val sc = spark.sparkContext
    requirePlugin(spark, "GoCaffe.train")
    val frames = Map("train" -> trainData) ++ testData.map("test" -> _)
    new DistributedTrainer(sc, opts, System.out, System.err, frames, syncMode).train()
  }

  /** Scores -model with the solver's test net on `data`, as
    * `GoCaffeRunner -test` does on the test net's source; returns one row
    * per score as -test prints them: `name` (e.g. accuracy, loss, prob[3])
    * and `value`.
    *
    * A deploy net's test compares the argmax of -scoresBlob (default: the
    * net's only output) with -labelColumn (default `label`); its input
    * comes from -dataColumn (default `data`).
    */
  def test(spark: SparkSession, args: Seq[String], data: DataFrame): DataFrame = {
    val opts = parse("GoCaffe.test", args, "test")
    if (opts.isTrain || opts.isFeatures)
      throw new GoCaffeException("GoCaffe.test: tests only; train with GoCaffe.train, extract with GoCaffe.features")
    if (opts.has("output"))
      throw new GoCaffeException("GoCaffe.test returns the scores as a DataFrame; -output is GoCaffeRunner's")
    requirePlugin(spark, "GoCaffe.test")
    val sc = spark.sparkContext
    val run = Inference.prepare(opts, data.columns.toSeq, sc.hadoopConfiguration, scoring = true, "GoCaffe.test")
    val scores = new DistributedTrainer(sc, opts, System.out, System.err, Map("test" -> run.frame(data)))
      .testScores(run.spec, opts.get("model").get)
    val schema = StructType(Seq(StructField("name", StringType, nullable = false),
      StructField("value", DoubleType, nullable = false)))
    spark.createDataFrame(scores.means.map { case (n, v) => Row(n, v) }.asJava, schema)
  }

  /** Extracts the blobs of -features (and -label's) for every row of
    * `data`, as `GoCaffeRunner -features` does, and returns them: the rows
    * of `data` in the same order and number, with its `id` and label
    * (-labelColumn, default `label`) columns where it has them, then one
    * array<float> column per blob.
    */
  def features(spark: SparkSession, args: Seq[String], data: DataFrame): DataFrame = {
    val opts = parse("GoCaffe.features", args, "")
    if (!opts.isFeatures) throw new GoCaffeException("GoCaffe.features: give the blobs to extract with -features BLOBS")
    if (opts.isTrain)
      throw new GoCaffeException("GoCaffe.features: extracts only; train with GoCaffe.train first")
    Seq("output", "outputFormat").filter(opts.has).foreach { o =>
      throw new GoCaffeException(s"GoCaffe.features returns the features as a DataFrame; -$o is GoCaffeRunner's")
    }
    requirePlugin(spark, "GoCaffe.features")
    val sc = spark.sparkContext
    val hadoop = sc.hadoopConfiguration
    val run = Inference.prepare(opts, data.columns.toSeq, hadoop, scoring = false, "GoCaffe.features")
    val blobs = FeatureExtraction.blobs(opts)
    FeatureExtraction.checkBlobs(run.spec, blobs)
    val keep = Seq("id", opts.get("labelColumn").getOrElse("label")).distinct.filter(data.columns.contains)
    val clash = blobs.filter(keep.contains)
    if (clash.nonEmpty)
      throw new GoCaffeException(s"GoCaffe.features: blob ${clash.mkString(", ")} has the name of a column kept " +
        "from the DataFrame")
    val weights = CaffeFiles.readBytes(opts.get("model").get, hadoop)
    val out = FrameOutputs.append(data, run.feed, run.spec.bytes, run.layer.layer, weights, blobs,
      s"${sc.applicationId}/features/${java.util.UUID.randomUUID()}")
    out.select((keep ++ blobs).map(n => col(s"`$n`")): _*)
  }

  /** Parses args with mode ("train", "test", or "" for none) implied. */
  private def parse(what: String, args: Seq[String], mode: String): CaffeOptions = {
    val argv = if (mode.isEmpty || args.exists(a => a == s"-$mode" || a == s"--$mode")) args else args :+ s"-$mode"
    CaffeOptionParser(argv) match {
      case ParseResult.Ok(o)           => o
      case ParseResult.Invalid(ps)     => throw new GoCaffeException(s"$what: ${ps.mkString("; ")}")
      case ParseResult.Help() | ParseResult.Version() =>
        throw new GoCaffeException(s"$what: --help and --version are command-line options")
    }
  }

  /** Throws, naming the setting, unless GoCaffe's plugin runs on the executors. */
  private[gocaffe] def requirePlugin(spark: SparkSession, what: String): Unit = {
    val plugins = spark.sparkContext.getConf.get("spark.plugins", "").split(",").map(_.trim)
    if (!plugins.contains(GoCaffePlugin.ClassName))
      throw new GoCaffeException(s"$what: GoCaffe's plugin is not running on the executors; start the " +
        s"application with --conf spark.plugins=${GoCaffePlugin.ClassName} (and gocaffe.jar on its classpath, " +
        "for example --jars gocaffe.jar)")
  }

  /** [[train]] for Java and for PySpark through py4j (`testData` may be null). */
  def train(spark: SparkSession, args: java.util.List[String], trainData: DataFrame, testData: DataFrame): Int =
    train(spark, args.asScala.toSeq, trainData, Option(testData))

  /** [[test]] for Java and for PySpark through py4j. */
  def test(spark: SparkSession, args: java.util.List[String], data: DataFrame): DataFrame =
    test(spark, args.asScala.toSeq, data)

  /** [[features]] for Java and for PySpark through py4j. */
  def features(spark: SparkSession, args: java.util.List[String], data: DataFrame): DataFrame =
    features(spark, args.asScala.toSeq, data)
}
