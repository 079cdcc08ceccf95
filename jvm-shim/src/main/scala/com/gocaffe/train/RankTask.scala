package com.gocaffe.train

import java.io.ByteArrayOutputStream
import java.net.InetAddress
import java.nio.file.{Files, Paths}
import java.util.concurrent.{CompletableFuture, ExecutionException, TimeUnit}

import scala.jdk.CollectionConverters._

import com.gocaffe.goexec.v1._
import com.gocaffe.shim.{GoExec, GoExecCallException, GoExecDiedException, GoExecRuntime}
import com.google.protobuf.{ByteString, UnsafeByteOperations}
import io.grpc.{Status, StatusRuntimeException}
import io.grpc.stub.{ClientCallStreamObserver, ClientResponseObserver}
import org.apache.spark.{BarrierTaskContext, SparkEnv, TaskContext}
import org.apache.spark.broadcast.Broadcast
import org.apache.spark.util.CollectionAccumulator
import org.slf4j.LoggerFactory

/** One progress line of one rank (a goexec Progress event). */
final case class RankProgress(rank: Int, iter: Long, loss: Double, lr: Double, imagesPerSecond: Double)

/** What one rank's task returns to the driver after a round. weights and
  * solverState are null where the rank does not send them (allreduce: all
  * ranks but 0). peers is the ring's address list when this round found the
  * peers (the first round of a ring generation), else empty.
  */
final case class RankResult(
    rank: Int,
    executorId: String,
    host: String,
    schedulerHost: String,
    progress: Seq[RankProgress],
    iterations: Long,
    seconds: Double,
    allreduceSeconds: Double,
    images: Long,
    finalLoss: Double,
    partitionRows: Long,
    loadedNow: Boolean,
    peers: Seq[String],
    weights: Array[Byte],
    solverState: Array[Byte])

/** One partition's test-net sums (a goexec Score answer). */
final case class ScoreResult(partition: Int, executorId: String, names: Seq[String], sums: Seq[Double],
                             lossWeights: Seq[Double], passes: Long, images: Long)

/** What every rank needs in every round of one training run; shipped in the
  * task closure. The solver travels as a broadcast.
  */
final case class TrainJob(
    dataset: String,
    layerName: String,
    layer: Array[Byte],
    solver: Broadcast[Array[Byte]],
    worldSize: Int,
    allreduce: Boolean,
    secret: Array[Byte],
    ringTimeoutMs: Long,
    withReplacement: Boolean = false,
    listenAddress: Option[String] = None,
    peerPort: Int = 0,
    seed: Long = 0L,
    encryptRing: Boolean = false,
    resize: Boolean = false,
    unusable: Option[UnusableSink] = None,
    mean: Array[Byte] = null) {
  /** Whether the ranks train on a ring (and so need each other's addresses). */
  def ring: Boolean = allreduce && worldSize > 1
}

/** A ring whose peers were found in an earlier round of its generation:
  * peers(i) is rank i's address and executors(i) the executor it ran on.
  */
final case class KeptRing(generation: Long, peers: Seq[String], executors: Seq[String])

/** One round: iterations from startIter, on ring generation ringGeneration
  * (0 without a ring). With kept, the ranks reuse that ring's peers and
  * call no Spark barrier; without, they find each other with allGather.
  */
final case class RoundSpec(
    round: Long,
    startIter: Long,
    iterations: Long,
    ringGeneration: Long = 0L,
    kept: Option[KeptRing] = None)

/** Executor side of a training round and of a test pass. Thin: it moves a
  * partition's Arrow bytes to goexec and relays goexec's answers.
  */
object RankTask {
  private val log = LoggerFactory.getLogger("com.gocaffe.train.RankTask")

  /** goexec sends and accepts messages up to 1 GiB (goexec/train/CONTRACT.md). */
  val MaxMessage: Int = 1 << 30
  /** Arrow bytes per LoadPartition chunk. */
  val ChunkBytes: Int = 4 << 20

  private val restartLock = new Object
  /** pid of the goexec whose death a task has already reported. */
  @volatile private var reportedDeath: Long = -1L
  /** The goexec this JVM's tasks last used. */
  @volatile private var lastSeen: GoExec = _

  /** This executor's goexec. When it has died, a new one is started for the
    * next attempt; if no task has reported that death yet, this task fails
    * with goexec's death report (naming the executor and the cause) so that
    * the driver's log says what happened, and the stage's retry runs on the
    * new goexec.
    */
  def goexec(): GoExec = restartLock.synchronized {
    val dead = Option(lastSeen)
    try {
      lastSeen = GoExecRuntime.get()
      lastSeen
    } catch {
      case d: GoExecDiedException =>
        val env = SparkEnv.get
        log.warn(s"starting a new goexec on executor ${env.executorId} after: ${d.getMessage}")
        GoExecRuntime.stop()
        val cwd = Paths.get("").toAbsolutePath
        val base = if (Files.isWritable(cwd)) cwd else Paths.get(System.getProperty("java.io.tmpdir"))
        val host = env.blockManager.blockManagerId.host
        val g = GoExecRuntime.start(env.executorId, host, base, GoExecRuntime.settings)
        lastSeen = g
        if (dead.exists(_.pid != reportedDeath)) throw d
        g
    }
  }

  /** Runs f on goexec g; a death it reveals counts as reported. */
  private[train] def reporting[T](g: GoExec)(f: => T): T =
    try f
    catch {
      case d: GoExecDiedException =>
        reportedDeath = g.pid
        throw d
    }

  private def blocking(g: GoExec): TrainerGrpc.TrainerBlockingStub = {
    g.ensureAlive()
    TrainerGrpc.newBlockingStub(g.channel).withMaxInboundMessageSize(MaxMessage).withMaxOutboundMessageSize(MaxMessage)
  }

  private def key(dataset: String, partition: Int): PartitionKey =
    PartitionKey.newBuilder().setDataset(dataset).setPartition(partition).build()

  /** Makes sure goexec holds the partition: asks HasPartition, else streams
    * the partition's Arrow IPC bytes with LoadPartition. Returns the rows and
    * whether it was loaded now. With unusable, goexec drops the rows whose
    * image does not decode or fit the layer, and this task reports them
    * there (the driver decides whether too many were).
    */
  def ensurePartition(g: GoExec, dataset: String, partition: Int, layer: Array[Byte],
                      arrow: Iterator[Array[Byte]], resize: Boolean = false,
                      unusable: Option[UnusableSink] = None, mean: Array[Byte] = null): (Long, Boolean) = {
    val k = key(dataset, partition)
    val has = g.call(blocking(g).withDeadlineAfter(60, TimeUnit.SECONDS).hasPartition(k))
    if (has.getCached) (has.getRows, false)
    else {
      val info = load(g, k, layer, arrow, resize, unusable.isDefined, mean)
      val bad = info.getUnusableRows
      log.info(s"executor ${g.executorId}: partition ${k.getDataset}#$partition loaded into goexec: " +
        s"${info.getRows} rows${if (bad > 0) s" ($bad unusable dropped)" else ""}, ${info.getBytes} bytes, " +
        s"tops ${info.getTopsList.asScala.mkString(", ")}, " + f"${info.getDecodeSeconds}%.2f s")
      val named = info.getUnusableList.asScala.toSeq
      named.foreach(n => System.err.println(s"GoCaffe: partition $partition of ${k.getDataset}: unusable $n"))
      unusable.foreach(_.add(partition, info.getRows, bad, named))
      (info.getRows, true)
    }
  }

  /** LoadPartition with flow control: a chunk is sent only when gRPC is ready for it. */
  private def load(g: GoExec, k: PartitionKey, layer: Array[Byte], arrow: Iterator[Array[Byte]],
                   resize: Boolean, skipUnusable: Boolean, mean: Array[Byte]): PartitionInfo = {
    val done = new CompletableFuture[PartitionInfo]()
    val ready = new Object
    var requests: ClientCallStreamObserver[PartitionChunk] = null
    val observer = new ClientResponseObserver[PartitionChunk, PartitionInfo] {
      private var answer: PartitionInfo = _
      override def beforeStart(r: ClientCallStreamObserver[PartitionChunk]): Unit = {
        requests = r
        r.setOnReadyHandler(() => ready.synchronized(ready.notifyAll()))
      }
      override def onNext(v: PartitionInfo): Unit = answer = v
      override def onError(t: Throwable): Unit = { done.completeExceptionally(t); ready.synchronized(ready.notifyAll()) }
      override def onCompleted(): Unit = done.complete(answer)
    }
    g.ensureAlive()
    val stub = TrainerGrpc.newStub(g.channel).withMaxInboundMessageSize(MaxMessage).withMaxOutboundMessageSize(MaxMessage)
    stub.loadPartition(observer)
    def send(c: PartitionChunk): Unit = {
      ready.synchronized {
        while (!requests.isReady && !done.isDone) ready.wait(1000)
      }
      if (!done.isDone) requests.onNext(c)
    }
    try {
      val head = PartitionChunk.newBuilder().setKey(k).setLayer(ByteString.copyFrom(layer)).setResize(resize)
        .setSkipUnusable(skipUnusable)
      if (mean != null) head.setMean(ByteString.copyFrom(mean))
      send(head.build())
      arrow.foreach { piece =>
        var off = 0
        while (off < piece.length && !done.isDone) {
          val n = math.min(ChunkBytes, piece.length - off)
          send(PartitionChunk.newBuilder().setArrowIpc(ByteString.copyFrom(piece, off, n)).build())
          off += n
        }
      }
      requests.onCompleted()
    } catch {
      case e: Throwable =>
        requests.onError(e)
        throw e
    }
    g.call {
      try done.get()
      catch {
        case e: ExecutionException => e.getCause match {
          case s: StatusRuntimeException => throw s
          case other                     => throw new RuntimeException(other)
        }
      }
    }
  }

  /** The address this rank's goexec listens on for its ring peers: the
    * configured one, else this executor's IP address (never a host name).
    */
  private def listenIp(job: TrainJob): String = job.listenAddress.getOrElse {
    val env = SparkEnv.get
    val fromEnv = Option(System.getenv("SPARK_LOCAL_IP")).filter(_.nonEmpty)
    InetAddress.getByName(fromEnv.getOrElse(env.blockManager.blockManagerId.host)).getHostAddress
  }

  /** One rank of one round (runs inside a barrier task): the round starts
    * from weights and state, fetched from the driver's file server. Each
    * progress event also goes to live, which executor heartbeats carry to
    * the driver while the round runs.
    */
  def trainRound(job: TrainJob, round: RoundSpec, weights: PartRef, state: PartRef,
                 live: CollectionAccumulator[RankProgress], arrow: Iterator[Array[Byte]]): Iterator[RankResult] = {
    val ctx = BarrierTaskContext.get()
    val rank = ctx.partitionId()
    val g = goexec()
    reporting(g)(trainOn(g, ctx, rank, job, round, weights, state, live, arrow))
  }

  /** Opens this rank's peer port and exchanges the addresses with Spark's
    * barrier allGather (index = rank). Spark's barrier calls poll their
    * answer once a second, so this runs only in the first round of a ring
    * generation.
    */
  private def findPeers(g: GoExec, ctx: BarrierTaskContext, job: TrainJob): Seq[String] = {
    val ip = listenIp(job)
    val req = OpenPeerPortRequest.newBuilder().setIp(ip).setPort(job.peerPort)
      .setAllowAnyAddress(job.listenAddress.exists(a => a == "0.0.0.0" || a == "::")).build()
    val addr = g.call(blocking(g).withDeadlineAfter(60, TimeUnit.SECONDS).openPeerPort(req)).getAddress
    ctx.allGather(addr).toSeq
  }

  /** The kept ring, if this rank can still use it: it runs on the executor
    * that rank ran on when the peers were found. Otherwise its address in the
    * list is not its goexec's: the round fails as RING_STALE at once (every
    * rank's peers must agree, so this rank alone cannot find new ones) and
    * the driver starts a new generation.
    */
  private def keptPeers(g: GoExec, rank: Int, kept: KeptRing): Seq[String] = {
    val here = SparkEnv.get.executorId
    if (kept.executors.lift(rank).contains(here)) kept.peers
    else throw new GoExecCallException(ErrorCode.RING_STALE, kept.peers.lift(rank).getOrElse(""), -1L,
      Status.Code.FAILED_PRECONDITION, detailed = false, g.executorId, g.host,
      s"rank $rank of ring generation ${kept.generation} ran on executor ${kept.executors.lift(rank).getOrElse("?")} " +
        s"and now runs on executor $here: its peers must be found again", null)
  }

  private def trainOn(g: GoExec, ctx: BarrierTaskContext, rank: Int, job: TrainJob, round: RoundSpec,
                      weightsAt: PartRef, stateAt: PartRef, live: CollectionAccumulator[RankProgress],
                      arrow: Iterator[Array[Byte]]): Iterator[RankResult] = {
    val (rows, loaded) = ensurePartition(g, job.dataset, rank, job.layer, arrow, job.resize, job.unusable, job.mean)
    // One copy of the model in this JVM: the request wraps the fetched bytes.
    val weights = UnsafeByteOperations.unsafeWrap(PartRef.fetch(weightsAt))
    val state = UnsafeByteOperations.unsafeWrap(PartRef.fetch(stateAt))

    // No ring, no barrier sync either: Spark's barrier calls poll their
    // answer once a second (BarrierTaskContext sleeps 1 s while it waits).
    var found: Seq[String] = Nil
    val peers: Seq[String] =
      if (!job.ring) Nil
      else round.kept match {
        case Some(k) => keptPeers(g, rank, k)
        case None    => found = findPeers(g, ctx, job); found
      }

    def request(peers: Seq[String]): TrainRoundRequest = TrainRoundRequest.newBuilder()
      .setSolver(ByteString.copyFrom(job.solver.value))
      .setWeights(weights)
      .setSolverState(state)
      .setStartIter(round.startIter)
      .setIterations(round.iterations)
      .setRank(rank)
      .setWorldSize(job.worldSize)
      .setSyncMode(if (job.allreduce) SyncMode.ALLREDUCE else SyncMode.AVERAGE)
      .addAllPeers(peers.asJava)
      .setSecret(ByteString.copyFrom(job.secret))
      .addData(DataBinding.newBuilder().setLayer(job.layerName).setKey(key(job.dataset, rank))
        .setWithReplacement(job.withReplacement))
      .setRound(round.round)
      .setRingTimeoutMs(job.ringTimeoutMs)
      .setSeed(job.seed)
      .setRingGeneration(if (job.ring) round.ringGeneration else 0L)
      .setEncryptRing(job.ring && job.encryptRing)
      .build()

    val progress = Seq.newBuilder[RankProgress]
    val w = new ByteArrayOutputStream()
    val s = new ByteArrayOutputStream()
    var stats: RoundStats = null
    def run(req: TrainRoundRequest): Unit = g.call {
      val events = blocking(g).trainRound(req)
      while (events.hasNext) {
        val e = events.next()
        e.getEventCase match {
          case TrainRoundEvent.EventCase.PROGRESS =>
            val p = e.getProgress
            val rp = RankProgress(rank, p.getIter, p.getLoss, p.getLr, p.getImagesPerSecond)
            progress += rp
            live.add(rp)
          case TrainRoundEvent.EventCase.WEIGHTS      => append(w, e.getWeights, "weights")
          case TrainRoundEvent.EventCase.SOLVER_STATE => append(s, e.getSolverState, "solver_state")
          case TrainRoundEvent.EventCase.DONE         => stats = e.getDone
          case other => log.warn(s"TrainRound: unexpected event $other")
        }
      }
    }
    try run(request(peers))
    catch {
      // A goexec that does not keep rings between rounds closed its peer
      // port after the last round and refuses a kept ring before it trains
      // (FAILED_PRECONDITION without an ErrorDetail). Every rank of the
      // stage runs the same goexec, so all of them land here: find the
      // peers for this round as the first round of a generation does.
      case e: GoExecCallException if round.kept.isDefined && !e.detailed &&
        e.grpcCode == Status.Code.FAILED_PRECONDITION && stats == null && progress.result().isEmpty =>
        log.info(s"executor ${g.executorId}: goexec keeps no ring between rounds (${e.description}); finding peers again")
        found = findPeers(g, ctx, job)
        run(request(found))
    }
    if (stats == null)
      throw new IllegalStateException(s"goexec on executor ${g.executorId} ended round ${round.round} without its done event")
    // In allreduce mode every rank holds the same weights: only rank 0's travel.
    val keep = !job.allreduce || rank == 0
    Iterator.single(RankResult(rank, g.executorId, g.host, SparkEnv.get.blockManager.blockManagerId.host,
      progress.result(), stats.getIterations, stats.getSeconds,
      stats.getAllreduceSeconds, stats.getImages, stats.getFinalLoss, rows, loaded, found,
      if (keep) w.toByteArray else null, if (keep) s.toByteArray else null))
  }

  private def append(out: ByteArrayOutputStream, c: ByteChunk, what: String): Unit = {
    if (c.getOffset != out.size())
      throw new IllegalStateException(s"goexec sent $what chunk at offset ${c.getOffset}, expected ${out.size()}")
    c.getData.writeTo(out)
  }

  /** Scores one test partition with the given weights, fetched from the
    * driver's file server (a normal task).
    */
  def score(partition: Int, dataset: String, layerName: String, layer: Array[Byte], solver: Array[Byte],
            weights: PartRef, arrow: Iterator[Array[Byte]], resize: Boolean = false,
            unusable: Option[UnusableSink] = None, mean: Array[Byte] = null): Iterator[ScoreResult] = {
    val g = goexec()
    reporting(g)(scoreOn(g, partition, dataset, layerName, layer, solver, weights, arrow, resize, unusable, mean))
  }

  private def scoreOn(g: GoExec, partition: Int, dataset: String, layerName: String, layer: Array[Byte],
                      solver: Array[Byte], weightsAt: PartRef, arrow: Iterator[Array[Byte]],
                      resize: Boolean, unusable: Option[UnusableSink], mean: Array[Byte]): Iterator[ScoreResult] = {
    ensurePartition(g, dataset, partition, layer, arrow, resize, unusable, mean)
    val weights = UnsafeByteOperations.unsafeWrap(PartRef.fetch(weightsAt))
    val req = ScoreRequest.newBuilder()
      .setSolver(ByteString.copyFrom(solver))
      .setTestNetIndex(0)
      .setWeights(weights)
      .addData(DataBinding.newBuilder().setLayer(layerName).setKey(key(dataset, partition)))
      .setIterations(0)
      .build()
    val r = g.call(blocking(g).score(req))
    val outs = r.getOutputsList.asScala.toSeq
    Iterator.single(ScoreResult(partition, g.executorId, outs.map(_.getName), outs.map(_.getSum),
      outs.map(_.getLossWeight), r.getPasses, r.getImages))
  }

  /** Whether the current task attempt is a retry (for the driver's log). */
  def attempt: Int = Option(TaskContext.get()).map(_.attemptNumber()).getOrElse(0)
}
