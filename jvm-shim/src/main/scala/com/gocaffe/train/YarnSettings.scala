package com.gocaffe.train

import com.gocaffe.shim.{GoCaffeConf, GoCaffeConfException}
import org.apache.spark.SparkConf

/** Spark settings GoCaffe derives on YARN before the SparkContext starts.
  *
  * goexec runs beside the executor JVM in the same container, outside the
  * JVM heap, so YARN counts its memory against the container's
  * spark.executor.memoryOverhead. GoCaffe makes the overhead hold both
  * goexec (its soft limit spark.gocaffe.goexec.memoryLimit) and the JVM's
  * own off-heap share (Spark's default overhead: the larger of 384 MiB and
  * spark.executor.memoryOverheadFactor of the heap):
  *  - memoryLimit set, overhead unset: the overhead is set to their sum;
  *  - memoryLimit set, overhead set smaller than the sum: a clear error
  *    before anything starts, instead of YARN killing containers later;
  *  - memoryLimit unset (0), overhead set: goexec's limit is what the
  *    overhead leaves beside the JVM's share;
  *  - neither set: goexec gets [[DefaultGoexecMiB]] and the overhead the sum.
  *
  * It also sets Spark's wait for registered executors before the first job
  * (spark.scheduler.minRegisteredResourcesRatio and
  * spark.scheduler.maxRegisteredResourcesWaitingTime, which YARN users of
  * CaffeOnSpark had to find) to all executors within
  * spark.gocaffe.barrier.slotWaitTimeout, the wait [[ExecutorWait]] does
  * itself before any GoCaffe job; a user's own values are kept.
  */
object YarnSettings {
  val LimitKey = "spark.gocaffe.goexec.memoryLimit"
  val OverheadKey = "spark.executor.memoryOverhead"
  /** goexec's memory on YARN when neither key is set. */
  val DefaultGoexecMiB = 1024L
  private val MiB = 1L << 20

  def isYarn(conf: SparkConf): Boolean = conf.get("spark.master", "").startsWith("yarn")

  /** Applies the settings above on a YARN master (nothing elsewhere);
    * returns the lines to tell the user. Throws [[GoCaffeConfException]]
    * when the overhead cannot hold goexec.
    */
  def configure(conf: SparkConf): Seq[String] = {
    if (!isYarn(conf)) return Nil
    val c = GoCaffeConf.resolve(conf)
    val waitMs = c.millis("spark.gocaffe.barrier.slotWaitTimeout")
    conf.setIfMissing("spark.scheduler.minRegisteredResourcesRatio", "1.0")
    conf.setIfMissing("spark.scheduler.maxRegisteredResourcesWaitingTime", s"${waitMs}ms")

    val heapMiB = conf.getSizeAsMb("spark.executor.memory", "1g")
    val factor = conf.getDouble("spark.executor.memoryOverheadFactor", 0.10)
    val jvmMiB = math.max(384L, (factor * heapMiB).toLong)
    val limitBytes = c.bytes(LimitKey)
    val limitMiB = (limitBytes + MiB - 1) / MiB
    val overheadMiB = conf.getOption(OverheadKey).map(_ => conf.getSizeAsMb(OverheadKey))
    (limitBytes > 0, overheadMiB) match {
      case (true, None) =>
        conf.set(OverheadKey, s"${limitMiB + jvmMiB}m")
        Seq(s"GoCaffe: $OverheadKey set to ${limitMiB + jvmMiB}m: ${limitMiB}m for goexec ($LimitKey) + ${jvmMiB}m " +
          "for the executor JVM's off-heap memory")
      case (true, Some(o)) if o < limitMiB + jvmMiB =>
        throw new GoCaffeConfException(s"$OverheadKey ${o}m cannot hold goexec: goexec runs in the executor's YARN " +
          s"container outside the JVM heap, with up to ${limitMiB}m ($LimitKey), beside the JVM's own off-heap " +
          s"${jvmMiB}m, so YARN would kill executor containers for memory goexec uses. Set $OverheadKey to at least " +
          s"${limitMiB + jvmMiB}m (or leave it unset: GoCaffe then sets it), or lower $LimitKey")
      case (true, Some(_)) => Nil
      case (false, Some(o)) =>
        val left = o - jvmMiB
        if (left < 64)
          throw new GoCaffeConfException(s"$OverheadKey ${o}m leaves ${math.max(0L, left)}m for goexec beside the " +
            s"executor JVM's off-heap ${jvmMiB}m: goexec runs in the executor's YARN container outside the JVM heap. " +
            s"Raise $OverheadKey (e.g. to ${jvmMiB + DefaultGoexecMiB}m), or leave it unset and set $LimitKey")
        conf.set(LimitKey, s"${left}m")
        Seq(s"GoCaffe: $LimitKey set to ${left}m: what $OverheadKey ${o}m leaves beside the executor JVM's ${jvmMiB}m")
      case (false, None) =>
        conf.set(LimitKey, s"${DefaultGoexecMiB}m")
        conf.set(OverheadKey, s"${DefaultGoexecMiB + jvmMiB}m")
        Seq(s"GoCaffe: $OverheadKey set to ${DefaultGoexecMiB + jvmMiB}m: ${DefaultGoexecMiB}m for goexec ($LimitKey, " +
          s"set to it) + ${jvmMiB}m for the executor JVM's off-heap memory")
    }
  }
}
