package com.gocaffe.train

import scala.jdk.CollectionConverters._

import org.apache.spark.sql.{DataFrame, SparkSession}
import org.apache.spark.util.CollectionAccumulator

/** Turns a data layer's source into a Spark DataFrame. goexec decodes the
  * columns (arrowio.FromLayer); Spark only reads and selects them.
  *
  * Sources: `parquet:PATH`, `orc:PATH`, `json:PATH`, `csv:PATH`, `avro:PATH`
  * (a format hint), or any path Spark reads (file:, hdfs:, s3a: ...) in the
  * layer's `dataframe_format` (Parquet by default). A `?key=value` query
  * after the path is goexec's (column hints) and is not part of the path.
  */
object DataSources {

  /** CaffeOnSpark's source classes GoCaffe reads through Spark. */
  val SparkClasses: Set[String] = Set("", "com.yahoo.ml.caffe.ImageDataFrame", "com.yahoo.ml.caffe.DataFrameSource")

  /** CaffeOnSpark's other source classes: known, not read yet. */
  val NotYetClasses: Set[String] = Set.empty

  private val Formats = Set("parquet", "orc", "json", "csv", "avro", "text")

  /** The format and path Spark reads for a source string. */
  def formatAndPath(source: String, defaultFormat: String): (String, String) = {
    val noQuery = source.indexOf('?') match {
      case -1 => source
      case i  => source.substring(0, i)
    }
    noQuery.indexOf(':') match {
      case i if i > 0 && Formats.contains(noQuery.substring(0, i).toLowerCase) =>
        (noQuery.substring(0, i).toLowerCase, noQuery.substring(i + 1))
      case _ => (if (defaultFormat.isEmpty) "parquet" else defaultFormat.toLowerCase, noQuery)
    }
  }

  /** Whether the source's reader counts the records it reads (and those
    * it skips as unusable): a database or SequenceFile source.
    */
  def countsRecords(d: DataLayer): Boolean =
    LmdbSource.isSource(d) || d.layer.getSourceClass == SeqImageSource.Class

  /** Reads the layer's data as a DataFrame, with CaffeOnSpark's
    * dataframe_column_select applied. With unusable, the source's unusable
    * records are reported through it ([[LmdbSource.reportUnusable]]): a
    * database's or SequenceFile's reader adds its own, goexec those it
    * drops ([[UnusableSink]]).
    */
  def read(spark: SparkSession, d: DataLayer, lmdbPartitions: Option[Int] = None, ranks: Option[Int] = None,
           unusable: Option[CollectionAccumulator[String]] = None): DataFrame = {
    val cls = d.layer.getSourceClass
    if (cls == LmdbSource.Class) { // CaffeOnSpark's -lmdb_partitions, by default the cluster size
      val n = ranks.getOrElse(
        DistributedTrainer.expectedExecutors(spark.sparkContext).getOrElse(spark.sparkContext.defaultParallelism))
      return select(d, LmdbSource.read(spark, d, lmdbPartitions.getOrElse(n), n, unusable))
    }
    if (HDF5Source.isSource(d)) // Caffe's HDF5Data, rewritten by CaffeDataLayers
      return select(d, HDF5Source.read(spark, d, ranks.getOrElse(
        DistributedTrainer.expectedExecutors(spark.sparkContext).getOrElse(spark.sparkContext.defaultParallelism))))
    if (cls == SeqImageSource.Class)
      return select(d, SeqImageSource.read(spark, d, ranks.getOrElse(spark.sparkContext.defaultParallelism), unusable))
    if (!SparkClasses.contains(cls)) {
      val what =
        if (NotYetClasses.contains(cls)) s"source_class $cls is not yet supported through Spark"
        else s"unknown source_class $cls"
      throw new GoCaffeException(s"data layer '${d.name}': $what " +
        s"(GoCaffe reads ${SparkClasses.filter(_.nonEmpty).mkString(" and ")} DataFrames, ${LmdbSource.Class}, " +
        s"${SeqImageSource.Class}, or any Parquet/ORC/JSON source)")
    }
    if (d.layer.getType == "Data") // spark-submit's nets have them rewritten (CaffeDataLayers)
      throw new GoCaffeException(s"data layer '${d.name}': Caffe's Data layer (LMDB/LevelDB ${d.source}) is read " +
        "through spark-submit's -train/-test; here give a MemoryData layer with source: \"parquet:/path\"")
    if (d.source.startsWith("mnist:"))
      throw new GoCaffeException(s"data layer '${d.name}': source ${d.source} is goexec's standalone MNIST reader; " +
        "on Spark convert it to Parquet first (go run ./tools/mnist2parquet -out DIR) and use source: \"parquet:DIR/train\"")
    unusable.foreach(acc => LmdbSource.track(s"data layer '${d.name}': ${d.source}", -1L,
      ranks.getOrElse(spark.sparkContext.defaultParallelism), "partitions", acc, quiet = true))
    val (format, path) = formatAndPath(d.source, d.format)
    val df =
      try spark.read.format(format).load(path)
      catch {
        case e: org.apache.spark.sql.AnalysisException =>
          throw new GoCaffeException(s"data layer '${d.name}': cannot read ${d.source} as $format: ${e.getMessage}", e)
      }
    select(d, df)
  }

  /** The layer's CaffeOnSpark dataframe_column_select applied to df. */
  def select(d: DataLayer, df: DataFrame): DataFrame = {
    val select = d.layer.getMemoryDataParam.getDataframeColumnSelectList.asScala.toSeq
    if (select.nonEmpty) df.selectExpr(select: _*) else df
  }
}
