package org.apache.spark.sql.gocaffe

import org.apache.spark.{SparkContext, SparkEnv}
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.DataFrame
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.execution.arrow.ArrowConverters
import org.apache.spark.sql.types.StructType

/** The few Spark internals GoCaffe's training shim needs, in one place:
  * Spark's own Arrow conversion (`private[sql]`), the executor list of the
  * status store and the driver's RPC file server (`private[spark]`).
  * Nothing here converts rows one by one.
  */
object GoCaffeSparkBridge {

  /** Arrow IPC stream end-of-stream marker: continuation + zero length. */
  private val EndOfStream: Array[Byte] = Array(-1, -1, -1, -1, 0, 0, 0, 0).map(_.toByte)

  /** The DataFrame's partitions as Arrow IPC streams: partition i yields byte
    * slices whose concatenation is one Arrow IPC stream (schema, record
    * batches of at most maxRecordsPerBatch rows, end-of-stream marker), as
    * Spark's ArrowStreamWriter writes it. Conversion is Spark's own
    * (ArrowConverters, columnar writers), never a per-row JVM loop here.
    */
  def arrowStreams(df: DataFrame, maxRecordsPerBatch: Long): RDD[Array[Byte]] = {
    val schema = df.schema
    val tz = df.sparkSession.sessionState.conf.sessionLocalTimeZone
    df.queryExecution.toRdd.mapPartitions(rows => arrowStream(rows, schema, maxRecordsPerBatch, tz))
  }

  /** One partition's rows (of the given schema) as one Arrow IPC stream, in
    * byte slices as [[arrowStreams]] yields them.
    */
  def arrowStream(rows: Iterator[InternalRow], schema: StructType, maxRecordsPerBatch: Long,
                  timeZone: String): Iterator[Array[Byte]] = {
    val maxBatchBytes = 64L << 20
    val batches = ArrowConverters.toBatchWithSchemaIterator(rows, schema, maxRecordsPerBatch, maxBatchBytes, timeZone,
      true /* errorOnDuplicatedFieldNames */ , false /* largeVarTypes */ )
    // Each element is a whole stream (schema + one batch + end marker):
    // keep the first one's schema, drop the others', end once.
    var first = true
    val body = batches.map { stream =>
      val withoutEnd = java.util.Arrays.copyOfRange(stream, 0, stream.length - EndOfStream.length)
      if (first) { first = false; withoutEnd }
      else {
        val skip = schemaMessageLength(withoutEnd)
        java.util.Arrays.copyOfRange(withoutEnd, skip, withoutEnd.length)
      }
    }
    val empty = Iterator.single(()).flatMap { _ =>
      if (first) {
        // An empty partition: schema and an empty batch, so the reader still
        // learns the columns.
        val stream = ArrowConverters.createEmptyArrowBatch(schema, timeZone, true, false)
        first = false
        Iterator.single(java.util.Arrays.copyOfRange(stream, 0, stream.length - EndOfStream.length))
      } else Iterator.empty
    }
    body ++ empty ++ Iterator.single(EndOfStream.clone())
  }

  /** Length of the IPC stream's leading schema message (continuation marker,
    * metadata length, flatbuffer metadata; a schema has no body).
    */
  private def schemaMessageLength(b: Array[Byte]): Int = {
    def int32(at: Int): Int =
      (b(at) & 0xff) | ((b(at + 1) & 0xff) << 8) | ((b(at + 2) & 0xff) << 16) | ((b(at + 3) & 0xff) << 24)
    if (b.length >= 8 && int32(0) == -1) 8 + int32(4)
    else if (b.length >= 4) 4 + int32(0) // legacy format without continuation marker
    else throw new IllegalStateException(s"Arrow IPC stream of ${b.length} bytes has no schema message")
  }

  /** One live executor: id, host and its total task cores. */
  final case class ExecutorCores(id: String, host: String, cores: Int)

  /** Whether e is Spark's refusal to start a barrier stage because the
    * cluster has fewer free task slots than the stage has tasks (a
    * private[spark] exception class, hence here).
    */
  def barrierSlotsShort(e: Throwable): Boolean =
    e.isInstanceOf[org.apache.spark.scheduler.BarrierJobSlotsNumberCheckFailed]

  /** The live executors (not the driver, except in local mode where the
    * driver is the executor), with their cores, from Spark's status store.
    */
  def executors(sc: SparkContext): Seq[ExecutorCores] = {
    val all = sc.statusStore.executorList(true)
    val picked = if (sc.isLocal) all else all.filter(_.id != "driver")
    picked.map(e => ExecutorCores(e.id, e.hostPort.split(":").headOption.getOrElse(e.hostPort), e.totalCores))
      .sortBy(_.id)
  }

  /** Waits (up to timeoutMs) until Spark's listener bus has delivered the
    * events posted so far, so a listener has seen every task that failed
    * before a job's failure was thrown.
    */
  def drainListeners(sc: SparkContext, timeoutMs: Long): Unit =
    try sc.listenerBus.waitUntilEmpty(timeoutMs)
    catch { case _: java.util.concurrent.TimeoutException => () }

  /** A new directory under the driver's Spark local directory
    * (spark.local.dir), which Spark deletes when the JVM exits.
    */
  def driverTempDir(sc: SparkContext, prefix: String): java.io.File =
    org.apache.spark.util.Utils.createTempDir(org.apache.spark.util.Utils.getLocalDir(sc.getConf), prefix)

  /** Serves the files of dir through the driver's RPC file server (the one
    * that serves sc.addFile's files to executors) under /name. Returns the
    * base URI (spark://host:port/name); a file's URI is the base URI, a
    * slash and its name. Files added to dir later are served too, files
    * deleted from it no longer are.
    */
  def serveDirectory(sc: SparkContext, name: String, dir: java.io.File): String =
    sc.env.rpcEnv.fileServer.addDirectory("/" + name, dir)

  /** Opens a file the driver serves (a URI from [[serveDirectory]]): its
    * bytes stream over Spark's RPC transport, authenticated and encrypted as
    * Spark's settings say (the way executors fetch sc.addFile's files).
    */
  def openFromDriver(uri: String): java.nio.channels.ReadableByteChannel =
    SparkEnv.get.rpcEnv.openChannel(uri)
}
