package com.gocaffe.train

import scala.reflect.ClassTag

import org.apache.spark.{Partition, TaskContext}
import org.apache.spark.rdd.RDD

/** prev with partition i preferring the executor that ran rank i last round
  * (Spark's `executor_HOST_ID` locations), so a rank's partition stays cached
  * in the same goexec across rounds. Narrow: prev's shuffle is reused.
  */
final class PinnedRDD[T: ClassTag](prev: RDD[T], locations: IndexedSeq[Option[String]]) extends RDD[T](prev) {
  override def compute(split: Partition, context: TaskContext): Iterator[T] = prev.iterator(split, context)

  override protected def getPartitions: Array[Partition] = prev.partitions

  override protected def getPreferredLocations(split: Partition): Seq[String] =
    locations.lift(split.index).flatten.map(Seq(_)).getOrElse(prev.preferredLocations(split))
}
