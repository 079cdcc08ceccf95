package com.gocaffe.train

import scala.reflect.ClassTag

import org.apache.spark.{Partition, TaskContext}
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.gocaffe.GoCaffeSparkBridge

/** Where a rank ran: the executor's scheduler host and id. */
final case class Pin(host: String, executorId: String) {
  /** Spark's location string for exactly this executor. */
  def location: String = s"executor_${host}_$executorId"
}

/** prev with partition i preferring the executor that ran rank i last round,
  * so a rank's partition stays cached in the same goexec across rounds.
  * Narrow: prev's shuffle is reused. A pin to an executor that is gone (lost;
  * Spark gives its replacement a new id) is dropped when the job is
  * submitted: that rank runs on whichever executor is free, and its partition
  * is loaded into that executor's goexec.
  */
final class PinnedRDD[T: ClassTag](prev: RDD[T], pins: IndexedSeq[Option[Pin]]) extends RDD[T](prev) {
  @transient private lazy val alive: Set[String] = GoCaffeSparkBridge.executors(sparkContext).map(_.id).toSet

  /** The parent's rows, opened only when first asked for: a round whose goexec
    * already holds its partition never reads them, and a shuffled parent's
    * reader fetches every block (megabytes per round) as soon as it exists.
    */
  override def compute(split: Partition, context: TaskContext): Iterator[T] = new Iterator[T] {
    private lazy val rows = prev.iterator(split, context)
    override def hasNext: Boolean = rows.hasNext
    override def next(): T = rows.next()
  }

  override protected def getPartitions: Array[Partition] = prev.partitions

  override protected def getPreferredLocations(split: Partition): Seq[String] =
    pins.lift(split.index).flatten.filter(p => alive(p.executorId)).map(p => Seq(p.location))
      .getOrElse(prev.preferredLocations(split))
}
