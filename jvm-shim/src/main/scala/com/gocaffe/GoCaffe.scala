package com.gocaffe

import scala.jdk.CollectionConverters._

import com.gocaffe.shim.{CaffeOptionParser, GoCaffePlugin, ParseResult}
import com.gocaffe.train.{DistributedTrainer, GoCaffeException}
import org.apache.spark.sql.{DataFrame, SparkSession}

/** GoCaffe from a Spark program: train on DataFrames the program already
  * holds, in place of the sources the solver's data layers name.
  *
  * {{{
  * // spark-shell --jars gocaffe.jar --conf spark.plugins=com.gocaffe.shim.GoCaffePlugin
  * val train = spark.read.parquet("hdfs:///mnist/train").where("label < 10")
  * val test  = spark.read.parquet("hdfs:///mnist/test")
  * com.gocaffe.GoCaffe.train(spark, Seq("-conf", "lenet_solver.prototxt",
  *   "-model", "hdfs:///models/lenet.caffemodel", "-clusterSize", "2"), train, Some(test))
  * }}}
  *
  * The options are GoCaffeRunner's (`-train` is implied). The DataFrames
  * take the place of the train net's and the test net's data layer (each
  * must still be a MemoryData/CoSData layer with a `source`, which is not
  * read); the layers' `dataframe_column_select` and schema rules apply to
  * them as to a source. GoCaffe's plugin must be on the executors, so the
  * application has to start with `spark.plugins` naming it.
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
    val argv = if (args.exists(a => a == "-train" || a == "--train")) args else args :+ "-train"
    val opts = CaffeOptionParser(argv) match {
      case ParseResult.Ok(o)           => o
      case ParseResult.Invalid(ps)     => throw new GoCaffeException(s"GoCaffe.train: ${ps.mkString("; ")}")
      case ParseResult.Help() | ParseResult.Version() =>
        throw new GoCaffeException("GoCaffe.train: --help and --version are command-line options")
    }
    if (opts.isTest || opts.isFeatures)
      throw new GoCaffeException("GoCaffe.train: trains only; run -test and -features through GoCaffeRunner")
    val sc = spark.sparkContext
    requirePlugin(spark, "GoCaffe.train")
    val frames = Map("train" -> trainData) ++ testData.map("test" -> _)
    new DistributedTrainer(sc, opts, System.out, System.err, frames, syncMode).train()
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
}
