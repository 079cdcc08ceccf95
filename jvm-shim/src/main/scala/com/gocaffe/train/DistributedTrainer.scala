package com.gocaffe.train

import java.io.PrintStream
import java.security.SecureRandom
import java.util.concurrent.TimeUnit

import caffe.Caffe.NetParameter
import com.gocaffe.shim.{CaffeOptions, GoCaffeConf}
import org.apache.hadoop.fs.Path
import org.apache.spark.SparkContext
import org.apache.spark.rdd.RDD
import org.apache.spark.resource.{ResourceProfile, ResourceProfileBuilder, TaskResourceRequests}
import org.apache.spark.sql.{DataFrame, SparkSession}
import org.apache.spark.sql.gocaffe.GoCaffeSparkBridge

/** GoCaffe's spark.gocaffe.* settings the driver uses (sparkconf/ declares them). */
final case class TrainSettings(
    allreduce: Boolean,
    roundIterations: Int,
    slotWaitMs: Long,
    peerTimeoutMs: Long,
    listenAddress: Option[String],
    peerPort: Int,
    secret: Option[String],
    withReplacement: Boolean,
    connection: String,
    encryptRing: Boolean)

object TrainSettings {
  /** The driver's settings, resolved (and already checked) by sparkconf's registry. */
  def from(sc: SparkContext): TrainSettings = {
    val c = GoCaffeConf.resolve(sc.getConf)
    TrainSettings(
      allreduce = c.string("spark.gocaffe.sync.mode") == "allreduce",
      roundIterations = c.int("spark.gocaffe.sync.roundIterations"),
      slotWaitMs = c.millis("spark.gocaffe.barrier.slotWaitTimeout"),
      peerTimeoutMs = c.millis("spark.gocaffe.sync.peerTimeout"),
      listenAddress = c.option("spark.gocaffe.net.listenAddress"),
      peerPort = c.int("spark.gocaffe.net.port"),
      secret = c.option("spark.gocaffe.auth.secret"),
      withReplacement = c.string("spark.gocaffe.data.partitionPolicy") == "with-replacement",
      connection = c.string("spark.gocaffe.connection"),
      // GoCaffe's own setting when the registry declares it, else Spark's
      // network encryption switch.
      encryptRing = c.option("spark.gocaffe.ring.encrypt").exists(_.trim.equalsIgnoreCase("true")) ||
        sc.getConf.getBoolean("spark.network.crypto.enabled", defaultValue = false))
  }
}

/** A data layer's partitions as Arrow IPC streams, repartitioned to the
  * cluster size; built once so that Spark reuses the shuffle across rounds.
  */
final case class ArrowData(layer: DataLayer, dataset: String, partitions: Int, rdd: RDD[Array[Byte]], origin: String,
                           unusable: UnusableSink, mean: Array[Byte])

/** The driver of distributed training (`-train`) and testing (`-test`):
  * rounds of τ iterations, each one barrier stage with one rank per
  * executor; the weights come back to the driver after every round.
  */
final class DistributedTrainer(sc: SparkContext, opts: CaffeOptions, out: PrintStream, err: PrintStream,
                               frames: Map[String, DataFrame] = Map.empty, syncMode: Option[String] = None) {
  // syncMode ("allreduce" or "average", checked by the caller) overrides
  // spark.gocaffe.sync.mode for this run: GoCaffeEstimator's syncMode param.
  private val settings = {
    val s = TrainSettings.from(sc)
    syncMode.fold(s)(m => s.copy(allreduce = m == "allreduce"))
  }
  private val hadoop = sc.hadoopConfiguration
  private val spark = SparkSession.builder().getOrCreate() // reuses sc, the active SparkContext
  private lazy val frameRun = DistributedTrainer.FrameRuns.incrementAndGet()

  private def say(s: String): Unit = { out.println(s); out.flush() }

  private var clusterSize: Option[Int] = None

  /** Up-front checks, once per run; returns the cluster size. */
  private[train] def checkCluster(): Int = clusterSize.getOrElse {
    val c = sc.getConf
    if (c.getBoolean("spark.dynamicAllocation.enabled", defaultValue = false))
      throw new GoCaffeException("spark.dynamicAllocation.enabled is true, but Spark refuses barrier stages " +
        "under dynamic allocation and GoCaffe trains in barrier stages: set --conf spark.dynamicAllocation.enabled=false " +
        "and give the executor count (--num-executors N / spark.executor.instances)")
    val instances = c.getOption("spark.executor.instances").map(_.trim.toInt)
    val expected = DistributedTrainer.expectedExecutors(sc)
    val n = (opts.int("clusterSize"), instances) match {
      case (Some(cs), Some(inst)) if cs != inst && !sc.isLocal =>
        throw new GoCaffeException(s"-clusterSize $cs disagrees with spark.executor.instances $inst: GoCaffe runs " +
          "exactly one rank per executor; give the same number to both, or leave -clusterSize out")
      case (Some(cs), _) => cs
      case (None, _)     => expected.getOrElse(1)
    }
    if (sc.isLocal && !sc.master.startsWith("local-cluster") && n != 1)
      throw new GoCaffeException(s"-clusterSize $n: Spark's local mode (${sc.master}) has one executor (the driver); " +
        "use -clusterSize 1, or --master local-cluster[N,cores,memory] for N executors")
    if (settings.connection == "infiniband" || opts.get("connection").exists(_.equalsIgnoreCase("infiniband")))
      say("GoCaffe: -connection infiniband: RDMA is not available in GoCaffe; the ranks use TCP")
    ExecutorWait.require(sc, n, settings.slotWaitMs, say)
    clusterSize = Some(n)
    n
  }

  private def tooFew(have: Int, need: Int): GoCaffeException =
    ExecutorWait.tooFew(sc.master, have, need, settings.slotWaitMs)

  /** One task per executor: a task-only resource profile asking for all of
    * an executor's cores (Standalone, YARN, Kubernetes). Local mode has one
    * executor and needs none.
    */
  private[train] def oneTaskPerExecutor(n: Int): Option[ResourceProfile] = {
    if (sc.isLocal && !sc.master.startsWith("local-cluster")) return None
    val execs = GoCaffeSparkBridge.executors(sc)
    val cores = execs.map(_.cores).filter(_ > 0)
    if (cores.isEmpty) return None
    if (cores.distinct.size > 1)
      say(s"GoCaffe: executors have different core counts (${cores.distinct.sorted.mkString(", ")}); " +
        s"each rank asks for ${cores.min}")
    val per = cores.min
    if (per <= 1) None
    else Some(new ResourceProfileBuilder().require(new TaskResourceRequests().cpus(per)).build())
  }

  /** A data layer's data as Arrow streams in n partitions: the DataFrame
    * the Scala API gave for this role ("train" or "test"), else the layer's
    * source.
    */
  private def arrowData(d: DataLayer, n: Int, role: String): ArrowData = {
    // The rows goexec finds unusable (an image that does not decode or does
    // not fit the layer) join the source's own count of unusable records.
    val acc = sc.collectionAccumulator[String](s"GoCaffe unusable rows of $role data ${d.name}")
    val (df, origin) = frames.get(role) match {
      case Some(f) => // from GoCaffe.train
        LmdbSource.track(s"data layer '${d.name}': the DataFrame given to GoCaffe.train", -1L, n, "partitions", acc,
          quiet = true)
        (DataSources.select(d, f), "DataFrame")
      case None => (DataSources.read(spark, d, opts.get("lmdb_partitions").map(_.toInt), Some(n), Some(acc)), d.source)
    }
    val counted = !frames.contains(role) && DataSources.countsRecords(d)
    val maxRecords = sc.getConf.getLong("spark.sql.execution.arrow.maxRecordsPerBatch", 10000L)
    // A database's key ranges (an HDF5 list's row ranges) come in one
    // partition per rank: each rank's task reads its own, with no shuffle
    // after them.
    val keyRanges = !frames.contains(role) && (LmdbSource.isSource(d) || HDF5Source.isSource(d))
    val rdd = GoCaffeSparkBridge.arrowStreams(if (keyRanges) df else df.repartition(n), maxRecords)
    // CaffeOnSpark's -persistent: the rows a rank was fed are kept on its
    // executor's disk, so that a goexec that lost its copy reloads them
    // from there instead of reading the source again.
    if (opts.has("persistent")) rdd.persist(org.apache.spark.storage.StorageLevel.DISK_ONLY)
    rdd.setName(s"GoCaffe $role data ${d.name} ($origin) as Arrow")
    // goexec caches partitions by this key: a DataFrame's key is new on every
    // run, so that a second GoCaffe.train in the application (a
    // TrainValidationSplit's next fit) never trains on the first one's rows.
    val key = if (frames.contains(role)) s"$origin-$frameRun" else origin
    ArrowData(d, s"${sc.applicationId}/$role/${d.name}/$key", n, rdd, origin, UnusableSink(acc, counted),
      CaffeFiles.meanOf(d, hadoop))
  }

  private def secret(): Array[Byte] = settings.secret match {
    case Some(s) => s.getBytes("UTF-8")
    case None    =>
      val b = new Array[Byte](32); new SecureRandom().nextBytes(b); b
  }

  /** Where -train writes its final model: -model, else the solver's snapshot_prefix. */
  private[train] def modelPathOf(spec: SolverSpec): String = OutputDestinations.modelPath(opts, spec)

  /** The weights and state training starts from: -snapshot, -weights, or
    * fresh; written to the store, so that the driver keeps no model in memory.
    */
  private def startingModel(store: ModelStore): Model =
    opts.get("snapshot").map { s =>
      val (w, st, parsed) = Snapshots.resume(s, hadoop)
      say(s"GoCaffe: resuming from $s at iteration ${parsed.getIter}")
      Model(store.write("weights", w), store.write("state", st), parsed.getIter.toLong)
    }.orElse(opts.get("weights").map { w =>
      val bytes = CaffeFiles.readBytes(w, hadoop)
      NetParameter.parseFrom(bytes) // fail early on a file that is no .caffemodel
      say(s"GoCaffe: starting from weights $w")
      Model(store.write("weights", bytes), None, 0L)
    }).getOrElse(Model(None, None, 0L))

  /** The iteration the round from iter ends at: τ later, or the next test,
    * snapshot or the end, whichever comes first.
    */
  private def roundEnd(spec: SolverSpec, iter: Long, maxIter: Long): Long =
    (Seq(maxIter, iter + settings.roundIterations) ++
      Seq(spec.testInterval, spec.snapshotEvery).filter(_ > 0).map(k => (iter / k + 1) * k)).min

  /** Where the round's time went: the slowest rank's training (its
    * all-reduce included) against Spark's share (task launch, weights to
    * the ranks and back) and the driver's (broadcast, average).
    */
  private def reportRound(o: RoundOutcome, iterations: Long): Unit = {
    val rs = o.results
    if (o.round == 1 || rs.exists(_.loadedNow))
      rs.foreach(r => say(s"GoCaffe: rank ${r.rank} on executor ${r.executorId} (${r.host}): partition of " +
        s"${r.partitionRows} rows${if (r.loadedNow) " loaded into goexec" else ""}"))
    val ar = rs.map(_.allreduceSeconds).max
    val slowest = rs.map(_.seconds).max
    val driverPart = if (settings.allreduce) f"rank 0's model to disk ${o.storeSeconds}%.3f s"
      else f"average ${o.averageSeconds}%.3f s"
    val ring = if (o.ringGeneration == 0) "" else
      s"; ring generation ${o.ringGeneration}, peers ${if (o.peersFound) "found" else "kept"}"
    err.println(f"GoCaffe: round ${o.round} done: $iterations%d iterations in ${o.seconds}%.2f s (slowest rank trained " +
      f"$slowest%.2f s, allreduce $ar%.2f s; driver: $driverPart$ring)")
  }

  /** `-train`: returns the exit status. */
  def train(): Int = {
    val n = checkCluster()
    val spec = CaffeDataLayers.onSpark(CaffeFiles.loadSolver(opts.get("conf").get, hadoop), hadoop)
    if (spec.trainData.size != 1)
      throw new GoCaffeException(s"${spec.solverPath}: the train net has ${spec.trainData.size} data layers with a " +
        s"source (${spec.trainData.map(_.name).mkString(", ")}); GoCaffe feeds exactly one from Spark for now")
    val rp = oneTaskPerExecutor(n)
    val train = arrowData(spec.trainData.head, n, "train")
    val test = spec.testData.headOption.filter(_ => spec.testInterval > 0).map(arrowData(_, n, "test"))
    val mode = if (settings.allreduce) "allreduce" else "average"
    say(s"GoCaffe: application ${sc.applicationId}: training ${spec.solverPath} on $n executor${if (n == 1) "" else "s"} " +
      s"($mode, ${settings.roundIterations} iterations per round): batch ${train.layer.batch} per rank, global batch " +
      s"${train.layer.batch * n}; data ${if (train.origin == "DataFrame") "the DataFrame given to GoCaffe.train" else train.origin} " +
      s"in $n partitions")

    // The model between rounds lives in files of the store (deleted by
    // close; by Spark's shutdown hook if training fails before it starts).
    val store = ModelStore.open(sc)
    var model = startingModel(store)
    val modelPath = modelPathOf(spec)
    val prefixName = {
      val p = if (spec.snapshotPrefix.nonEmpty) spec.snapshotPrefix else new Path(modelPath).getName.stripSuffix(".caffemodel")
      new Path(p).getName
    }
    val snaps = new Snapshots(modelPath, prefixName, hadoop)
    val curves = MetricsFile.beside(modelPath, prefixName, hadoop, resume = opts.get("snapshot").isDefined, say)
    // Every rank initialises from one seed, so all start from the same
    // weights: the solver's random_seed, else one drawn here for the job.
    val seed =
      if (spec.solver.getRandomSeed >= 0) 0L
      else (new SecureRandom().nextLong() & Long.MaxValue) | 1L
    val solverB = sc.broadcast(spec.bytes)
    val job = TrainJob(
      dataset = train.dataset,
      layerName = train.layer.name,
      layer = train.layer.layer.toByteArray,
      solver = solverB,
      worldSize = n,
      allreduce = settings.allreduce,
      secret = secret(),
      ringTimeoutMs = settings.peerTimeoutMs,
      withReplacement = settings.withReplacement,
      listenAddress = settings.listenAddress,
      peerPort = settings.peerPort,
      seed = seed,
      encryptRing = settings.encryptRing,
      resize = opts.has("resize"),
      unusable = Some(train.unusable),
      mean = train.mean)
    val failures = new FailureLog(err)
    sc.addSparkListener(failures)
    val maxIter = spec.maxIter.toLong
    val started = System.nanoTime()
    val startIter = model.iter
    val live = new LiveProgress(sc, n, maxIter, startIter, say)
    sc.addSparkListener(live)
    val runner = new RoundRunner(sc, job, store, train.rdd, rp, live.acc, failures, maxAttempts, say, err,
      () => tooFew(GoCaffeSparkBridge.executors(sc).size, n))
    var lastTest: Option[String] = None
    try {
      // Caffe tests before the first update unless test_initialization is
      // false; a fresh start is scored by goexec from the seed every rank
      // initialises with.
      if (test.isDefined && model.iter == 0 && spec.solver.getTestInitialization) {
        val seeded = if (model.weights.isDefined || seed == 0L) spec.bytes
        else spec.solver.toBuilder.setRandomSeed(seed).build().toByteArray
        lastTest = Some(curves.tested(0L, runTest(test.get, seeded, model.weightsRef, rp, 0L, "GoCaffe test at iteration 0")))
      }
      while (model.iter < maxIter) {
        val end = roundEnd(spec, model.iter, maxIter)
        val from = model.iter
        val roundStartMs = System.currentTimeMillis()
        val o = runner.run(model, end, maxIter)
        reportRound(o, end - model.iter)
        store.delete(model) // the round is done: no retry starts from it again
        LmdbSource.reportUnusable(say)
        model = o.model
        // Progress: one line per display point, over all ranks; those the
        // heartbeats did not bring while the round ran.
        live.roundEnded(o.results.flatMap(_.progress), (end - startIter) / ((System.nanoTime() - started) / 1e9))
        curves.train(o.results.flatMap(_.progress), from, end, roundStartMs, System.currentTimeMillis())
        if (spec.snapshotEvery > 0 && end % spec.snapshotEvery == 0 && end < maxIter) {
          val (m, s) = snaps.periodic(model)
          say(s"GoCaffe: snapshot at iteration $end: $m, $s")
        }
        if (test.isDefined && (end % spec.testInterval == 0 || end == maxIter))
          lastTest = Some(curves.tested(end, runTest(test.get, solverB.value, model.weightsRef, rp, end, s"GoCaffe test at iteration $end")))
      }
      val (m, s) = snaps.finalModel(model)
      say(s"GoCaffe: training done at iteration ${model.iter} in ${LiveProgress.fmtDuration((System.nanoTime() - started) / 1e9)}; " +
        s"model $m, solver state $s")
      lastTest.foreach(t => say(s"GoCaffe: final test: $t"))
      curves.finish()
      0
    } finally {
      sc.removeSparkListener(failures)
      sc.removeSparkListener(live)
      solverB.destroy()
      store.close()
    }
  }

  private val maxAttempts = math.max(1, sc.getConf.getInt("spark.stage.maxConsecutiveAttempts", 4))

  /** The test phase: a normal stage scoring every test partition; outputs
    * summed over partitions and divided by the passes (Caffe's test display).
    */
  private def runTest(test: ArrowData, solver: Array[Byte], weights: PartRef, rp: Option[ResourceProfile],
                      iter: Long, desc: String): TestScores = {
    sc.setJobDescription(desc)
    val solverB = sc.broadcast(solver)
    val ds = test.dataset
    val name = test.layer.name
    val layer = test.layer.layer.toByteArray
    val resize = opts.has("resize")
    val sink = test.unusable
    val mean = test.mean
    val t0 = System.nanoTime()
    val stage = test.rdd.mapPartitionsWithIndex { (i, it) =>
      RankTask.score(i, ds, name, layer, solverB.value, weights, it, resize, Some(sink), mean)
    }
    val parts = rp.fold(stage)(p => stage.withResources(p)).collect().toSeq
    solverB.destroy()
    val passes = parts.map(_.passes).sum
    val images = parts.map(_.images).sum
    val names = parts.headOption.map(_.names).getOrElse(Nil)
    val means = names.indices.map(k => names(k) -> parts.map(_.sums(k)).sum / math.max(1L, passes))
    val line = means.map { case (k, v) => f"$k = $v%.4f" }.mkString(", ") +
      f" ($images images, ${parts.size} partitions, ${(System.nanoTime() - t0) / 1e9}%.1f s)"
    say(s"GoCaffe: test at iteration $iter: $line")
    LmdbSource.reportUnusable(say)
    TestScores(line, means)
  }

  /** `-test`: scores -model on the test net's data; returns the exit status. */
  def test(): Int = {
    val spec = CaffeDataLayers.onSpark(CaffeFiles.loadSolver(opts.get("conf").get, hadoop), hadoop)
    val scores = testScores(spec, opts.get("model").get)
    opts.get("output").foreach(o => say(s"GoCaffe: test result written to ${TestScores.write(o, scores, hadoop)}"))
    0
  }

  /** Scores the model at path with spec's test net on its first data layer
    * (fed from the "test" DataFrame when given).
    */
  private[gocaffe] def testScores(spec: SolverSpec, model: String): TestScores = {
    val n = checkCluster()
    val d = spec.testData.headOption.getOrElse(
      throw new GoCaffeException(s"${spec.solverPath}: the test net has no data layer with a source"))
    val store = ModelStore.open(sc)
    try {
      val w = store.write("weights", CaffeFiles.readBytes(model, hadoop))
      runTest(arrowData(d, n, "test"), spec.bytes, w.fold(PartRef.Empty)(_.ref), oneTaskPerExecutor(n), 0L,
        s"GoCaffe test of $model")
    } finally store.close()
  }
}

object DistributedTrainer {
  /** Runs on DataFrames in this driver, numbering their goexec dataset keys. */
  private[train] val FrameRuns = new java.util.concurrent.atomic.AtomicLong()

  private val LocalCluster = """local-cluster\[\s*(\d+)\s*,.*""".r

  /** The executor count the application asked for, when it says so. */
  def expectedExecutors(sc: SparkContext): Option[Int] = {
    val c = sc.getConf
    sc.master match {
      case LocalCluster(k)                => Some(k.toInt)
      case _ if sc.isLocal                => Some(1)
      case _ =>
        c.getOption("spark.executor.instances").map(_.trim.toInt).orElse(
          for {
            max <- c.getOption("spark.cores.max")
            per <- c.getOption("spark.executor.cores")
          } yield max.toInt / per.toInt)
    }
  }

  /** Spark settings training needs, set before the SparkContext starts:
    * Spark's own barrier-slot check polls every second for as long as
    * GoCaffe's slot wait, so GoCaffe's message comes first; executors send
    * heartbeats every 2 s (Spark's default is 10 s), as they carry the
    * running ranks' progress to the driver ([[LiveProgress]]).
    */
  def configure(conf: org.apache.spark.SparkConf): Unit = {
    val waitMs = GoCaffeConf.resolve(conf).millis("spark.gocaffe.barrier.slotWaitTimeout")
    conf.setIfMissing("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "1s")
    conf.setIfMissing("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures",
      math.max(1L, TimeUnit.MILLISECONDS.toSeconds(waitMs) + 5).toString)
    conf.setIfMissing("spark.executor.heartbeatInterval", "2s")
  }
}
