package com.gocaffe.shim

import java.io.{BufferedReader, File, IOException, InputStreamReader}
import java.nio.charset.StandardCharsets
import java.nio.file.attribute.PosixFilePermissions
import java.nio.file.{FileVisitResult, Files, Path, Paths, SimpleFileVisitor, StandardCopyOption}
import java.nio.file.attribute.BasicFileAttributes
import java.util.concurrent.{CancellationException, ExecutionException, TimeUnit, TimeoutException}
import java.util.concurrent.atomic.{AtomicBoolean, AtomicInteger, AtomicReference}

import scala.jdk.CollectionConverters._

import com.gocaffe.goexec.v1._
import io.grpc.{ManagedChannel, StatusRuntimeException}
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder
import io.grpc.netty.shaded.io.netty.channel.{EventLoopGroup, MultiThreadIoEventLoopGroup}
import io.grpc.netty.shaded.io.netty.channel.epoll.{Epoll, EpollDomainSocketChannel, EpollIoHandler}
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress
import org.slf4j.LoggerFactory

/** goexec died while its executor still needed it. The message names the
  * executor, the exit status and goexec's last log lines.
  */
final class GoExecDiedException(message: String) extends RuntimeException(message)

/** Settings for starting goexec: the `spark.gocaffe.goexec.*` keys and the
  * data cache directory, as resolved by sparkconf's registry.
  */
final case class GoExecSettings(
    startTimeoutMs: Long,
    stopTimeoutMs: Long,
    logLevel: String,
    logTailLines: Int,
    memoryLimitBytes: Long,
    threads: Int,
    binary: Option[String],
    cacheDir: Option[String],
    nonFinite: String = "stop")

object GoExecSettings {
  /** Reads the settings from resolved values (see [[GoCaffeConf]]). */
  def from(c: GoCaffeConf): GoExecSettings =
    GoExecSettings(
      startTimeoutMs = c.millis("spark.gocaffe.goexec.startTimeout"),
      stopTimeoutMs = c.millis("spark.gocaffe.goexec.stopTimeout"),
      logLevel = c.string("spark.gocaffe.goexec.logLevel"),
      logTailLines = c.int("spark.gocaffe.goexec.logTailLines"),
      memoryLimitBytes = c.bytes("spark.gocaffe.goexec.memoryLimit"),
      threads = c.int("spark.gocaffe.goexec.threads"),
      binary = c.option("spark.gocaffe.goexec.binary"),
      cacheDir = c.option("spark.gocaffe.data.cacheDir"),
      nonFinite = c.string("spark.gocaffe.nonFinite"))

  /** The resolved keys an executor needs (the driver hands them over). */
  val ExecutorPrefixes: Seq[String] = Seq("spark.gocaffe.goexec.", "spark.gocaffe.data.", "spark.gocaffe.nonFinite")
}

/** One running goexec process owned by this JVM, and the gRPC channel to it.
  *
  * goexec's output (zerolog JSON) is copied line by line to this JVM's stderr
  * (so it lands in the executor log) by a supervisor thread that also keeps
  * the last lines; when goexec exits without being asked to, the supervisor
  * records why, and every later [[ensureAlive]] throws [[GoExecDiedException]].
  */
final class GoExec private (
    val executorId: String,
    val host: String,
    val workDir: Path,
    val socketPath: String,
    process: Process,
    eventLoop: EventLoopGroup,
    val channel: ManagedChannel,
    settings: GoExecSettings) {

  private val log = LoggerFactory.getLogger(classOf[GoExec])
  private val stopping = new AtomicBoolean(false)
  private val death = new AtomicReference[String](null)
  private val tail = new java.util.ArrayDeque[String]()
  private val exited = new java.util.concurrent.CountDownLatch(1)

  /** goexec's process id. */
  val pid: Long = process.pid()

  private val supervisor = new Thread(() => supervise(), s"gocaffe-goexec-supervisor-$pid")
  supervisor.setDaemon(true)
  supervisor.start()

  private def supervise(): Unit = {
    val in = new BufferedReader(new InputStreamReader(process.getInputStream, StandardCharsets.UTF_8))
    try {
      var line = in.readLine()
      while (line != null) {
        System.err.println(line)
        tail.synchronized {
          tail.addLast(line)
          while (tail.size > settings.logTailLines) tail.removeFirst()
        }
        line = in.readLine()
      }
    } catch {
      case _: IOException => // stream closed by stop()
    }
    val code = process.waitFor()
    if (!stopping.get()) {
      val msg = describeDeath(code)
      death.set(msg)
      log.error(msg)
    }
    exited.countDown()
  }

  private def describeDeath(code: Int): String = {
    val how =
      if (code > 128) s"exit status $code (killed by signal ${code - 128}${signalName(code - 128)})"
      else s"exit status $code"
    val lines = lastLogLines
    val shown = if (lines.isEmpty) "  (goexec wrote no log lines)" else lines.map("  " + _).mkString("\n")
    s"goexec (pid $pid) on executor $executorId (host $host) died: $how. " +
      s"The executor cannot run GoCaffe tasks until it is restarted. goexec's last ${lines.size} log lines:\n$shown"
  }

  private def signalName(sig: Int): String = sig match {
    case 9  => " SIGKILL"
    case 15 => " SIGTERM"
    case 11 => " SIGSEGV"
    case 6  => " SIGABRT"
    case 2  => " SIGINT"
    case _  => ""
  }

  /** goexec's most recent log lines (at most logTailLines). */
  def lastLogLines: Seq[String] = tail.synchronized(tail.asScala.toSeq)

  /** Throws [[GoExecDiedException]] if goexec exited without being stopped. */
  def ensureAlive(): Unit = {
    val d = death.get()
    if (d != null) throw new GoExecDiedException(d)
    if (stopping.get()) throw new IllegalStateException(s"goexec on executor $executorId is stopping")
  }

  /** Whether the process is running. */
  def isAlive: Boolean = process.isAlive

  /** Blocks until goexec has exited (for tests and the kill self-test). */
  def awaitExit(timeoutMs: Long): Boolean = exited.await(timeoutMs, TimeUnit.MILLISECONDS)

  /** A blocking stub with a per-call deadline. */
  def stub(deadlineMs: Long = 30000L): ExecutorGrpc.ExecutorBlockingStub = {
    ensureAlive()
    ExecutorGrpc.newBlockingStub(channel).withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS)
  }

  /** Calls Version; a failure after goexec died reports the death instead. */
  def version(): VersionResponse = call(stub().version(VersionRequest.getDefaultInstance))

  /** Calls Devices. */
  def devices(): DevicesResponse = call(stub().devices(DevicesRequest.getDefaultInstance))

  /** Runs a gRPC call; if it fails because goexec died, throws the death
    * report, else a [[GoExecCallException]] with goexec's error code.
    */
  def call[T](f: => T): T =
    try f
    catch {
      case e: StatusRuntimeException =>
        if (!process.isAlive) {
          awaitExit(5000)
          ensureAlive()
        }
        throw GoExecError.from(executorId, host, e)
    }

  /** Stops goexec (SIGTERM, then SIGKILL after stopTimeoutMs) and removes its
    * work directory. Safe to call more than once.
    */
  def stop(): Unit = {
    if (!stopping.compareAndSet(false, true)) return
    channel.shutdown()
    if (process.isAlive) {
      process.destroy() // SIGTERM: goexec stops gracefully
      if (!process.waitFor(settings.stopTimeoutMs, TimeUnit.MILLISECONDS)) {
        log.warn(s"goexec (pid $pid) did not stop in ${settings.stopTimeoutMs} ms; killing it")
        process.destroyForcibly()
        process.waitFor(5, TimeUnit.SECONDS)
      }
    }
    try process.getOutputStream.close() catch { case _: IOException => }
    channel.awaitTermination(2, TimeUnit.SECONDS)
    eventLoop.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(3, TimeUnit.SECONDS)
    supervisor.join(5000)
    GoExec.deleteTree(workDir)
    log.info(s"goexec (pid $pid) on executor $executorId stopped; removed $workDir")
  }
}

object GoExec {
  private val log = LoggerFactory.getLogger("com.gocaffe.shim.GoExec")

  /** Where the linux/amd64 goexec binary lives inside the jar. */
  val BinaryResource = "gocaffe/linux-amd64/goexec"

  /** The CUDA variant beside it; goexec hands over to it when granted a GPU. */
  val CudaBinaryResource = "gocaffe/linux-amd64/goexec-cuda"

  /** Prefix of the per-goexec work directory. */
  val WorkDirPrefix = "gocaffe-goexec-"

  /** Extracts goexec into a fresh directory under baseDir (or under
    * settings.cacheDir when set), starts `goexec serve` on a Unix socket
    * there, and waits until it answers Health. On any failure the process is
    * stopped and the directory removed.
    */
  def start(executorId: String, host: String, defaultBase: Path, settings: GoExecSettings,
      gpus: Seq[String] = Nil): GoExec = {
    val os = System.getProperty("os.name", "")
    val arch = System.getProperty("os.arch", "")
    if (os != "Linux" || !(arch == "amd64" || arch == "x86_64"))
      throw new IllegalStateException(s"goexec on executor $executorId: this jar carries goexec for linux/amd64 only; " +
        s"this executor runs $os/$arch")
    if (!Epoll.isAvailable)
      throw new IllegalStateException(s"goexec on executor $executorId: Netty epoll is unavailable, so the " +
        s"Unix socket cannot be reached: ${Epoll.unavailabilityCause()}")

    val baseDir = settings.cacheDir.map { d =>
      val p = Paths.get(d).toAbsolutePath
      try Files.createDirectories(p)
      catch {
        case e: IOException => throw new IllegalStateException(s"goexec on executor $executorId: " +
          s"spark.gocaffe.data.cacheDir $d cannot be created: $e", e)
      }
      p
    }.getOrElse(defaultBase)
    val dir = Files.createTempDirectory(baseDir, WorkDirPrefix,
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
    var proc: Process = null
    var group: EventLoopGroup = null
    var channel: ManagedChannel = null
    try {
      val bin = settings.binary match {
        case Some(b) =>
          val p = Paths.get(b).toAbsolutePath
          if (!Files.isRegularFile(p) || !Files.isExecutable(p))
            throw new IllegalStateException(s"goexec on executor $executorId: spark.gocaffe.goexec.binary $b " +
              "is not an executable file on this executor")
          p
        case None =>
          val p = dir.resolve("goexec")
          val in = Option(getClass.getClassLoader.getResourceAsStream(BinaryResource)).getOrElse(
            throw new IllegalStateException(s"goexec binary $BinaryResource is missing from the GoCaffe jar"))
          try Files.copy(in, p, StandardCopyOption.REPLACE_EXISTING) finally in.close()
          Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwx------"))
          if (gpus.nonEmpty) Option(getClass.getClassLoader.getResourceAsStream(CudaBinaryResource)).foreach { cin =>
            val c = dir.resolve("goexec-cuda")
            try Files.copy(cin, c, StandardCopyOption.REPLACE_EXISTING) finally cin.close()
            Files.setPosixFilePermissions(c, PosixFilePermissions.fromString("rwx------"))
          }
          p
      }

      // Unix socket paths are limited to 107 bytes; use the path relative to
      // this JVM's working directory when it is shorter (goexec runs there too).
      val cwd = Paths.get("").toAbsolutePath
      val absSock = dir.resolve("goexec.sock")
      val sock = if (absSock.startsWith(cwd)) cwd.relativize(absSock).toString else absSock.toString
      if (sock.getBytes(StandardCharsets.UTF_8).length > 100)
        throw new IllegalStateException(s"goexec socket path $sock is too long for a Unix socket (at most 100 " +
          "bytes here): " + (if (settings.cacheDir.isDefined) "set a shorter spark.gocaffe.data.cacheDir"
          else "run the executor in a shorter working directory, or set spark.gocaffe.data.cacheDir to a short path"))

      val limits =
        (if (settings.memoryLimitBytes > 0) Seq("--memory-limit", settings.memoryLimitBytes.toString) else Nil) ++
          (if (settings.threads > 0) Seq("--threads", settings.threads.toString) else Nil) ++
          Seq("--nonfinite", settings.nonFinite)
      val cmd = Seq(bin.toString, "serve", "--socket", sock, "--log-level", settings.logLevel,
        "--exit-on-stdin-eof", "--remove-on-exit", dir.toString) ++ limits ++
        (if (gpus.nonEmpty) Seq("--gpus", gpus.mkString(",")) else Nil)
      val pb = new ProcessBuilder(cmd: _*).directory(cwd.toFile).redirectErrorStream(true)
      pb.environment().put("GOCAFFE_EXECUTOR_ID", executorId)
      pb.environment().put("TMPDIR", dir.toString)
      proc = pb.start()
      log.info(s"started goexec (pid ${proc.pid()}) for executor $executorId in $dir: $bin")

      group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory())
      channel = NettyChannelBuilder.forAddress(new DomainSocketAddress(sock))
        .eventLoopGroup(group)
        .channelType(classOf[EpollDomainSocketChannel])
        .usePlaintext()
        .build()
      val g = new GoExec(executorId, host, dir, sock, proc, group, channel, settings)
      try {
        waitHealthy(g, proc, channel, settings.startTimeoutMs)
        g
      } catch {
        case e: Throwable =>
          g.stop()
          throw e
      }
    } catch {
      case e: Throwable =>
        if (channel != null) channel.shutdownNow()
        if (proc != null) proc.destroyForcibly()
        if (group != null) group.shutdownGracefully(0, 1, TimeUnit.SECONDS)
        deleteTree(dir)
        throw e
    }
  }

  /** Waits for Health = SERVING. The call waits for the socket to appear
    * (gRPC wait-for-ready) and is cancelled at once if goexec exits.
    */
  private def waitHealthy(g: GoExec, proc: Process, channel: ManagedChannel, timeoutMs: Long): Unit = {
    val fut = ExecutorGrpc.newFutureStub(channel).withWaitForReady()
      .withDeadlineAfter(timeoutMs, TimeUnit.MILLISECONDS)
      .health(HealthRequest.getDefaultInstance)
    proc.onExit().thenRun(() => fut.cancel(true))
    val resp =
      try fut.get(timeoutMs + 5000, TimeUnit.MILLISECONDS)
      catch {
        case _: CancellationException | _: ExecutionException | _: TimeoutException =>
          g.awaitExit(if (proc.isAlive) 0 else 5000)
          val why = if (proc.isAlive) s"it did not answer Health within $timeoutMs ms"
          else s"it exited with status ${proc.exitValue()}"
          throw new IllegalStateException(
            s"goexec (pid ${proc.pid()}) on executor ${g.executorId} (host ${g.host}) failed to start: $why. " +
              s"Last log lines:\n${g.lastLogLines.map("  " + _).mkString("\n")}")
      }
    if (resp.getStatus != HealthResponse.Status.SERVING)
      throw new IllegalStateException(s"goexec on executor ${g.executorId} answered Health ${resp.getStatus}")
  }

  /** Removes a directory tree, ignoring files that are already gone. */
  def deleteTree(dir: Path): Unit = {
    if (!Files.exists(dir)) return
    try {
      Files.walkFileTree(dir, new SimpleFileVisitor[Path] {
        override def visitFile(f: Path, a: BasicFileAttributes): FileVisitResult = {
          Files.deleteIfExists(f); FileVisitResult.CONTINUE
        }
        override def visitFileFailed(f: Path, e: IOException): FileVisitResult = FileVisitResult.CONTINUE
        override def postVisitDirectory(d: Path, e: IOException): FileVisitResult = {
          Files.deleteIfExists(d); FileVisitResult.CONTINUE
        }
      })
    } catch {
      case e: IOException => log.warn(s"could not remove $dir: $e")
    }
  }
}

/** The goexec of this JVM (executor), started by the plugin's executor side.
  * Tasks reach it through [[GoExecRuntime.get]]; a Spark task has no other
  * path to its executor's plugin, so this is the one per-JVM holder.
  */
object GoExecRuntime {
  private val current = new AtomicReference[GoExec](null)
  private val starts = new AtomicInteger(0)
  private val lastSettings = new AtomicReference[GoExecSettings](null)

  /** The settings the last goexec of this JVM started with (for a restart). */
  def settings: GoExecSettings =
    Option(lastSettings.get()).getOrElse(throw new IllegalStateException(
      "goexec was never started in this JVM: the GoCaffe plugin is not loaded (spark.plugins=com.gocaffe.shim.GoCaffePlugin)"))

  /** Starts this JVM's goexec; fails if one is already running. */
  def start(executorId: String, host: String, baseDir: Path, settings: GoExecSettings,
      gpus: Seq[String] = Nil): GoExec = synchronized {
    val old = current.get()
    if (old != null) throw new IllegalStateException(s"goexec already started on executor $executorId (pid ${old.pid})")
    lastSettings.set(settings)
    val g = GoExec.start(executorId, host, baseDir, settings, gpus)
    starts.incrementAndGet()
    current.set(g)
    g
  }

  /** How many goexec processes this JVM has started. */
  def startCount: Int = starts.get()

  /** This executor's goexec; throws [[GoExecDiedException]] if it died. */
  def get(): GoExec = {
    val g = current.get()
    if (g == null)
      throw new IllegalStateException("goexec is not running in this JVM: the GoCaffe plugin is not loaded " +
        "(spark.plugins=com.gocaffe.shim.GoCaffePlugin)")
    g.ensureAlive()
    g
  }

  /** Stops and forgets this JVM's goexec, if any. */
  def stop(): Unit = synchronized {
    val g = current.getAndSet(null)
    if (g != null) g.stop()
  }
}
