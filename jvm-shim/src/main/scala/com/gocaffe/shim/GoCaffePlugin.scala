package com.gocaffe.shim

import java.nio.file.{Files, Path, Paths}
import java.util.{Map => JMap}
import java.util.concurrent.ConcurrentHashMap

import scala.jdk.CollectionConverters._

import org.apache.spark.SparkContext
import org.apache.spark.api.plugin.{DriverPlugin, ExecutorPlugin, PluginContext, SparkPlugin}
import org.slf4j.LoggerFactory

/** Sent by an executor to the driver once its goexec answers. */
final case class GoExecStarted(executorId: String, host: String, pid: Long, version: String, startCount: Int)

/** GoCaffe's Spark plugin (`spark.plugins=com.gocaffe.shim.GoCaffePlugin`).
  * The executor side starts, supervises and stops goexec; the driver side
  * records which goexec each executor runs.
  */
class GoCaffePlugin extends SparkPlugin {
  override def driverPlugin(): DriverPlugin = new GoCaffeDriverPlugin
  override def executorPlugin(): ExecutorPlugin = new GoCaffeExecutorPlugin
}

object GoCaffePlugin {
  val ClassName: String = classOf[GoCaffePlugin].getName
}

/** Driver side: logs each executor's goexec as it reports in. */
class GoCaffeDriverPlugin extends DriverPlugin {
  private val log = LoggerFactory.getLogger(classOf[GoCaffeDriverPlugin])
  private val started = new ConcurrentHashMap[String, GoExecStarted]()

  /** Resolves GoCaffe's settings once, on the driver (GoCaffeRunner has
    * already checked them), and hands the executors the resolved values
    * they need: they start goexec with exactly what the driver checked.
    */
  override def init(sc: SparkContext, ctx: PluginContext): JMap[String, String] =
    GoCaffeConf.resolve(sc.getConf).under(GoExecSettings.ExecutorPrefixes: _*).asJava

  override def receive(message: AnyRef): AnyRef = message match {
    case m: GoExecStarted =>
      started.put(m.executorId, m)
      log.info(s"executor ${m.executorId} (${m.host}): goexec ${m.version} pid ${m.pid} ready")
      null // a one-way message (PluginContext.send) takes no reply
    case other => throw new IllegalArgumentException(s"GoCaffe driver plugin: unexpected message $other")
  }
}

/** Executor side: goexec lives exactly as long as the executor. */
class GoCaffeExecutorPlugin extends ExecutorPlugin {
  private val log = LoggerFactory.getLogger(classOf[GoCaffeExecutorPlugin])
  @volatile private var hook: Thread = _

  override def init(ctx: PluginContext, extraConf: JMap[String, String]): Unit = {
    val settings = GoExecSettings.from(GoCaffeConf.fromResolved(extraConf))
    val base = workBase()
    val host = hostName(ctx)
    // The GPUs Spark granted this executor (spark.executor.resource.gpu.*):
    // goexec computes on the first one when it can, else on the CPU.
    val gpus = Option(ctx.resources().get("gpu")).map(_.addresses.toSeq).getOrElse(Nil)
    val g = GoExecRuntime.start(ctx.executorID(), host, base, settings, gpus)
    // Also stop goexec if the JVM exits without Spark calling shutdown().
    hook = new Thread(() => GoExecRuntime.stop(), "gocaffe-goexec-shutdown")
    Runtime.getRuntime.addShutdownHook(hook)
    val v = g.version()
    log.info(s"goexec ${v.getVersion} (pid ${g.pid}) serving executor ${ctx.executorID()} on ${g.socketPath}")
    try ctx.send(GoExecStarted(ctx.executorID(), host, g.pid, v.getVersion, GoExecRuntime.startCount))
    catch { case e: Exception => log.warn(s"could not report goexec to the driver: $e") }
  }

  /** This executor's host. PluginContext.hostname() fails on executors whose
    * RpcEnv has no server address (client mode, Spark 4.2), so fall back to
    * the JVM's idea of the host.
    */
  private def hostName(ctx: PluginContext): String =
    try ctx.hostname()
    catch {
      case _: NullPointerException => java.net.InetAddress.getLocalHost.getHostName
    }

  /** The executor's working directory (Spark's per-application executor dir)
    * when writable, else java.io.tmpdir.
    */
  private def workBase(): Path = {
    val cwd = Paths.get("").toAbsolutePath
    if (Files.isWritable(cwd)) cwd else Paths.get(System.getProperty("java.io.tmpdir"))
  }

  override def shutdown(): Unit = {
    GoExecRuntime.stop()
    val h = hook
    if (h != null) {
      try Runtime.getRuntime.removeShutdownHook(h)
      catch { case _: IllegalStateException => } // already shutting down
    }
  }
}
