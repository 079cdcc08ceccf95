package org.apache.spark.sql.gocaffe

import org.apache.spark.TaskContext
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.{DataFrame, SparkSession}
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.execution.arrow.ArrowConverters
import org.apache.spark.sql.types.StructType

/** Spark internals behind -features: a DataFrame's rows as the RDD Spark
  * executes, and goexec's Arrow IPC answers turned back into rows of a
  * DataFrame with Spark's own Arrow reader (no per-value JVM loop).
  */
object FeatureFrames {

  /** The DataFrame's rows as Spark executes them, with its session time zone. */
  def internalRows(df: DataFrame): (RDD[InternalRow], StructType, String) =
    (df.queryExecution.toRdd, df.schema, df.sparkSession.sessionState.conf.sessionLocalTimeZone)

  /** Rows of complete Arrow IPC streams (schema, record batches, end marker),
    * each checked against the expected schema (names and types). The rows
    * are views of the Arrow batches; Spark's scan of [[dataFrame]] copies each
    * into an UnsafeRow before the next batch is read.
    */
  def rowsOf(streams: Iterator[Array[Byte]], expected: StructType): Iterator[InternalRow] = {
    val (rows, schema) = ArrowConverters.fromBatchWithSchemaIterator(streams, TaskContext.get())
    var checked = false
    rows.map { r =>
      if (!checked) {
        val got = schema.map(f => f.name -> f.dataType)
        val want = expected.map(f => f.name -> f.dataType)
        if (got != want)
          throw new IllegalStateException(s"goexec's feature rows have schema ${schema.simpleString}, " +
            s"expected ${expected.simpleString}")
        checked = true
      }
      r
    }
  }

  /** A DataFrame over rows of the given schema. */
  def dataFrame(spark: SparkSession, rows: RDD[InternalRow], schema: StructType): DataFrame =
    spark.asInstanceOf[org.apache.spark.sql.classic.SparkSession].internalCreateDataFrame(rows, schema, false)
}
