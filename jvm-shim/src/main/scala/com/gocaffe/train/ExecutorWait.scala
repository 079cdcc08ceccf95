package com.gocaffe.train

import com.gocaffe.shim.SelfTest
import org.apache.spark.SparkContext

/** Waiting for the executors a run needs (one per rank) before any work,
  * up to spark.gocaffe.barrier.slotWaitTimeout, and the one message when
  * they do not come, saying what to change for the cluster manager at hand.
  */
object ExecutorWait {
  val Key = "spark.gocaffe.barrier.slotWaitTimeout"

  /** Returns once n executors are registered; throws [[GoCaffeException]]
    * after waitMs with fewer.
    */
  def require(sc: SparkContext, n: Int, waitMs: Long, say: String => Unit): Unit = {
    val now = SelfTest.executorCount(sc)
    if (now < n)
      say(s"GoCaffe: waiting up to ${seconds(waitMs)} ($Key) for $n executors; $now registered so far")
    val have = SelfTest.awaitExecutors(sc, n, waitMs)
    if (have < n) throw tooFew(sc.master, have, n, waitMs)
  }

  private def seconds(ms: Long): String = s"${ms / 1000} s"

  /** The message for `have` executors of `need` after waiting waitMs. */
  def tooFew(master: String, have: Int, need: Int, waitMs: Long): GoCaffeException = {
    val fix =
      if (master.startsWith("yarn"))
        s"YARN granted $have of the $need executor containers: free capacity in the queue (spark.yarn.queue) or on " +
          "the NodeManagers, ask for smaller containers (--executor-memory, spark.executor.memoryOverhead, " +
          s"--executor-cores), or raise $Key if the cluster is only busy"
      else if (master.startsWith("local-cluster")) s"Start more executors (local-cluster[$need,...])"
      else "Start more executors (--num-executors / spark.executor.instances, or spark.cores.max)"
    new GoCaffeException(s"GoCaffe needs $need executors (one per rank, -clusterSize $need) but the cluster has " +
      s"$have after waiting ${seconds(waitMs)} ($Key). $fix; or lower -clusterSize to $have")
  }
}
