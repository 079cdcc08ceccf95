package com.gocaffe.train

import scala.collection.mutable
import scala.jdk.CollectionConverters._

import org.apache.spark.SparkContext
import org.apache.spark.scheduler.{SparkListener, SparkListenerExecutorMetricsUpdate}
import org.apache.spark.util.CollectionAccumulator

/** The driver's progress lines, one per `display` iteration over all ranks,
  * printed while a round runs.
  *
  * Each rank adds its goexec Progress events to [[acc]]; Spark sends a
  * running task's accumulator values to the driver with every executor
  * heartbeat (spark.executor.heartbeatInterval, which
  * [[DistributedTrainer.configure]] lowers for GoCaffe jobs), and this
  * listener prints an iteration's line as soon as every rank of one stage
  * attempt has reported it. At the round's end [[roundEnded]] prints, from
  * the ranks' results, the lines that no heartbeat brought. Lines come out in
  * increasing iteration order, each once: an iteration printed by a failed
  * attempt is not printed again by its retry.
  */
final class LiveProgress(sc: SparkContext, ranks: Int, maxIter: Long, startIter: Long, say: String => Unit)
    extends SparkListener {
  val acc: CollectionAccumulator[RankProgress] = sc.collectionAccumulator[RankProgress]("GoCaffe progress")
  private val started = System.nanoTime()
  // Guarded by this.
  private var printed = -1L
  private val seen = mutable.Map.empty[Int, mutable.Map[Long, mutable.Map[Int, RankProgress]]]

  override def onExecutorMetricsUpdate(e: SparkListenerExecutorMetricsUpdate): Unit =
    for {
      (_, stage, _, infos) <- e.accumUpdates
      info <- infos if info.id == acc.id
      value <- info.update
    } value match {
      case ps: java.util.List[_] => heard(stage, ps.asScala.collect { case p: RankProgress => p }.toSeq)
      case _                     =>
    }

  private def heard(stage: Int, ps: Seq[RankProgress]): Unit = synchronized {
    val byIter = seen.getOrElseUpdate(stage, mutable.Map.empty)
    ps.foreach(p => byIter.getOrElseUpdate(p.iter, mutable.Map.empty)(p.rank) = p)
    val complete = byIter.toSeq.filter { case (it, rs) => it > printed && rs.size == ranks }.sortBy(_._1)
    // Only a prefix of whole iterations: a later one never jumps ahead of an
    // earlier one that some rank has not reported yet.
    val waiting = byIter.collect { case (it, rs) if it > printed && rs.size < ranks => it }
    val limit = if (waiting.isEmpty) Long.MaxValue else waiting.min
    complete.takeWhile(_._1 < limit).foreach { case (it, rs) => line(it, rs.values.toSeq, liveRate(it)) }
  }

  private def liveRate(it: Long): Double = (it - startIter) / ((System.nanoTime() - started) / 1e9)

  /** Prints the round's lines that were not printed live, from the ranks'
    * results; rate is the cluster's iterations per second so far.
    */
  def roundEnded(ps: Seq[RankProgress], rate: Double): Unit = synchronized {
    ps.groupBy(_.iter).toSeq.sortBy(_._1).foreach { case (it, rs) => if (it > printed) line(it, rs, rate) }
    seen.clear()
  }

  private def line(it: Long, ps: Seq[RankProgress], rate: Double): Unit = {
    val loss = ps.map(_.loss).sum / ps.size
    val ips = ps.map(_.imagesPerSecond).sum
    val eta = if (rate > 0) LiveProgress.fmtDuration((maxIter - it) / rate) else "?"
    say(f"GoCaffe: iteration $it%d/$maxIter%d, loss $loss%.5f, lr ${ps.head.lr}%.6g, ${ips}%.0f images/s " +
      s"(${ps.size} rank${if (ps.size == 1) "" else "s"}), ETA $eta")
    printed = it
  }
}

object LiveProgress {
  /** 42s, 3m07s, 1h05m. */
  def fmtDuration(s: Double): String = {
    val t = math.max(0L, math.round(s))
    if (t >= 3600) f"${t / 3600}h${t % 3600 / 60}%02dm" else if (t >= 60) f"${t / 60}m${t % 60}%02ds" else s"${t}s"
  }
}
