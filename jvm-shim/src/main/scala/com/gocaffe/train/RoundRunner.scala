package com.gocaffe.train

import java.io.PrintStream

import com.gocaffe.goexec.v1.ErrorCode
import com.gocaffe.shim.GoExecError
import org.apache.spark.{ExceptionFailure, ExecutorLostFailure, SparkContext, SparkException, TaskKilled}
import org.apache.spark.rdd.RDD
import org.apache.spark.resource.ResourceProfile
import org.apache.spark.scheduler.{SparkListener, SparkListenerTaskEnd}
import org.apache.spark.sql.gocaffe.GoCaffeSparkBridge
import org.apache.spark.util.CollectionAccumulator

/** Where training stands between rounds: the weights and solver state the
  * next round starts from (none: a fresh start), at iteration iter, in
  * files of the driver's [[ModelStore]].
  */
final case class Model(weights: Option[StoredPart], state: Option[StoredPart], iter: Long) {
  def weightsRef: PartRef = weights.fold(PartRef.Empty)(_.ref)
  def stateRef: PartRef = state.fold(PartRef.Empty)(_.ref)
}

/** A finished round: the model after it, the ranks' results (sorted by rank,
  * without their weights and state) and where the driver's time went:
  * averaging the ranks' models (average mode), writing rank 0's to the
  * driver's disk (allreduce mode).
  */
final case class RoundOutcome(round: Long, model: Model, results: Seq[RankResult], seconds: Double,
                              storeSeconds: Double, averageSeconds: Double, ringGeneration: Long = 0L) {
  /** Whether the ranks exchanged their addresses this round (Spark's barrier allGather). */
  def peersFound: Boolean = results.exists(_.peers.nonEmpty)
}

/** Logs failed GoCaffe tasks on the driver with the executor and cause, and
  * keeps their coded goexec errors: a barrier stage fails with its first
  * failed task's reason, which may be a peer's PEER_LOST while another
  * rank's BAD_INPUT is the cause.
  */
private[train] final class FailureLog(err: PrintStream) extends SparkListener {
  @volatile var round: String = ""
  private val coded = new java.util.concurrent.ConcurrentLinkedQueue[GoExecError.Coded]()

  /** The coded goexec errors of the tasks that failed since the last call. */
  def takeCoded(): Seq[GoExecError.Coded] =
    Iterator.continually(coded.poll()).takeWhile(_ != null).toSeq

  override def onTaskEnd(e: SparkListenerTaskEnd): Unit = {
    val where = s"executor ${e.taskInfo.executorId} (host ${e.taskInfo.host})"
    val why = e.reason match {
      case f: ExceptionFailure =>
        GoExecError.find(new RuntimeException(f.description)).foreach(coded.add)
        Some(s"${f.className}: ${f.description}")
      case l: ExecutorLostFailure   => Some(s"executor lost: ${l.toErrorString}")
      case _: TaskKilled            => None
      case org.apache.spark.Success => None
      case other                    => Some(other.toString)
    }
    why.foreach(w => err.println(s"GoCaffe: $round: task ${e.taskInfo.index} on $where failed: $w"))
  }
}

/** Runs training rounds: one barrier stage per round, with one rank per
  * executor, again from the same model when the stage fails (Spark never
  * retries a failed barrier result stage itself), up to maxAttempts times.
  *
  * Ring peers are found once per ring generation: the first round of a
  * generation exchanges the ranks' addresses with Spark's barrier allGather,
  * later rounds reuse them (goexec keeps the ring's connections) and call no
  * barrier at all. Any failure starts a new generation. A failure goexec
  * marks as one that can never succeed (BAD_INPUT, DIVERGED, OUT_OF_MEMORY)
  * is not retried: it ends training with GoCaffe's sentence naming the cause.
  */
private[train] final class RoundRunner(
    sc: SparkContext,
    job: TrainJob,
    store: ModelStore,
    data: RDD[Array[Byte]],
    resources: Option[ResourceProfile],
    live: CollectionAccumulator[RankProgress],
    failures: FailureLog,
    maxAttempts: Int,
    say: String => Unit,
    err: PrintStream,
    slotShortage: () => Exception) {

  private val mode = if (job.allreduce) "allreduce" else "average"
  private var round = 0L
  private var generation = if (job.ring) 1L else 0L
  private var kept: Option[KeptRing] = None
  private var placement: IndexedSeq[Option[Pin]] = IndexedSeq.fill(job.worldSize)(None)

  /** The ring generation the next round uses (0 without a ring). */
  def ringGeneration: Long = generation

  /** Trains from `from` to iteration end; returns the round's outcome or
    * throws [[GoCaffeException]] with the cause. The ranks fetch `from` from
    * the driver's file server; its files stay until the caller deletes
    * them, so that every retry starts from them.
    */
  def run(from: Model, end: Long, maxIter: Long): RoundOutcome = {
    round += 1
    val desc = s"GoCaffe round $round: iterations ${from.iter + 1}-$end of $maxIter ($mode, ${job.worldSize} ranks)"
    failures.round = desc
    sc.setJobDescription(desc)
    val (wRef, sRef) = (from.weightsRef, from.stateRef)
    val t0 = System.nanoTime()
    val (results, averaged) = withRetries(desc, from.iter, end - from.iter) { spec =>
      val (j, progress) = (job, live) // the task closure must not capture this runner
      val stage = new PinnedRDD(data, placement).barrier().mapPartitions { it =>
        RankTask.trainRound(j, spec, wRef, sRef, progress, it)
      }
      val ranked = resources.fold(stage)(p => stage.withResources(p))
      if (job.allreduce) (collect(ranked).sortBy(_.rank), None)
      else {
        val (rs, avg) = ModelAverage.roundAverage(ranked, collect, store)
        (rs.sortBy(_.rank), Some(avg))
      }
    }
    val secs = (System.nanoTime() - t0) / 1e9
    placement = results.map(r => Some(Pin(r.schedulerHost, r.executorId))).toIndexedSeq
    results.find(_.peers.nonEmpty).foreach { r =>
      kept = Some(KeptRing(generation, r.peers, results.map(_.executorId)))
    }
    val ts = System.nanoTime()
    val model = averaged match {
      case Some(a) => Model(Some(a.weights), Some(a.state), end)
      case None =>
        val r0 = results.find(_.rank == 0).get
        Model(store.write("weights", r0.weights), store.write("state", r0.solverState), end)
    }
    // The model lives in the store's files now, not in the results.
    RoundOutcome(round, model, results.map(_.copy(weights = null, solverState = null)), secs,
      (System.nanoTime() - ts) / 1e9, averaged.map(_.seconds).getOrElse(0.0), generation)
  }

  /** Runs the barrier job, turning Spark's slot shortage into GoCaffe's message. */
  private def collect[T](rdd: RDD[T]): Seq[T] =
    try rdd.collect().toSeq
    catch {
      case e: SparkException if slotsShort(e) => throw slotShortage()
    }

  private def slotsShort(e: SparkException): Boolean =
    Iterator.iterate[Throwable](e)(_.getCause).takeWhile(_ != null).take(8).exists(GoCaffeSparkBridge.barrierSlotsShort)

  private def newGeneration(): Unit = if (job.ring) {
    generation += 1
    kept = None
  }

  /** Runs a round's stage until it succeeds; each attempt gets the ring
    * spec of the moment (a failure invalidates the kept ring).
    */
  private def withRetries[T](what: String, iter: Long, iterations: Long)(f: RoundSpec => T): T = {
    var attempt = 1
    var staleAgain = false
    var result: Option[T] = None
    while (result.isEmpty) {
      val spec = RoundSpec(round = round, startIter = iter, iterations = iterations, ringGeneration = generation, kept = kept)
      failures.takeCoded() // what earlier attempts left
      try result = Some(f(spec))
      catch {
        case e: SparkException =>
          // The stage fails with one task's reason; another rank's may be
          // the cause (a bad label on rank 0 is PEER_LOST on rank 1).
          GoCaffeSparkBridge.drainListeners(sc, 5000L)
          var all = GoExecError.find(e).toSeq ++ failures.takeCoded()
          // A lost peer is usually another rank's failure seen first: give
          // that rank's own report a few seconds to reach the driver.
          val deadline = System.nanoTime() + 3000000000L
          while (all.forall(_.retryable) && all.exists(_.code == ErrorCode.PEER_LOST) && System.nanoTime() < deadline) {
            Thread.sleep(100)
            GoCaffeSparkBridge.drainListeners(sc, 1000L)
            all = all ++ failures.takeCoded()
          }
          val coded = all.find(!_.retryable).orElse(all.headOption)
          coded.filterNot(_.retryable).foreach(c => throw new GoCaffeException(RoundRunner.sentence(what, c), e))
          newGeneration()
          val why = RoundRunner.cause(e)
          if (coded.exists(_.code == ErrorCode.RING_STALE) && !staleAgain) {
            // A rank moved: find the peers again at once, once per round.
            staleAgain = true
            say(s"GoCaffe: $what: the ring's peers changed ($why); finding them again (ring generation $generation)")
          } else if (attempt < maxAttempts) {
            err.println(s"GoCaffe: $what failed (attempt $attempt of $maxAttempts): $why")
            say(s"GoCaffe: retrying $what from the weights of iteration $iter (attempt ${attempt + 1} of $maxAttempts)")
            attempt += 1
          } else
            throw new GoCaffeException(s"$what failed $maxAttempts times (spark.stage.maxConsecutiveAttempts); " +
              s"the last failure: $why", e)
      }
    }
    result.get
  }
}

object RoundRunner {
  // A task's exception as Spark's job failure quotes it: "pkg.Class: message".
  private val TaskException = """^(?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error)(?:: (.*))?$""".r

  /** GoCaffe's sentence for a failure that no retry can fix. */
  def sentence(what: String, c: GoExecError.Coded): String = {
    val subject = if (c.subject.isEmpty) "" else s" (${c.subject})"
    val at = if (c.iteration >= 0) s" at iteration ${c.iteration}" else ""
    c.code match {
      case ErrorCode.BAD_INPUT     => s"${c.where} refused its input$subject: ${c.description} ($what; not retried: the same input fails again)"
      case ErrorCode.DIVERGED      => s"training diverged$at$subject: ${c.where}: ${c.description} ($what; not retried)"
      case ErrorCode.OUT_OF_MEMORY => s"the net does not fit the memory goexec may use$subject: ${c.where}: ${c.description} ($what; not retried)"
      case other                   => s"${c.where}: $other$subject: ${c.description} ($what)"
    }
  }

  /** One line saying why a Spark job failed: goexec's coded failure, else
    * the failed task's exception, else the first line of Spark's message.
    */
  def cause(e: Throwable): String =
    GoExecError.find(e).map(c => s"${c.where}: ${c.code}: ${c.description}").getOrElse {
      val lines = Option(e.getMessage).iterator.flatMap(_.linesIterator).map(_.trim).toSeq
      lines.collectFirst { case l @ TaskException(_) => l }.orElse(lines.headOption).getOrElse(e.toString)
    }
}
