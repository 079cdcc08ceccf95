package com.gocaffe.shim

import java.io.PrintStream
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.ReentrantLock

import scala.jdk.CollectionConverters._

import org.apache.spark.{BarrierTaskContext, SparkContext}
import org.apache.spark.scheduler.{SparkListener, SparkListenerBlockManagerAdded, SparkListenerBlockManagerRemoved,
  SparkListenerExecutorAdded, SparkListenerExecutorRemoved}

/** What one executor's goexec answered. */
final case class SelfTestReport(
    executorId: String,
    host: String,
    pid: Long,
    version: String,
    goVersion: String,
    osArch: String,
    startCount: Int,
    cpu: String,
    gpus: String,
    workDir: String) {

  /** The line `--selftest` prints for this executor. */
  def line: String =
    s"executor $executorId host $host: goexec $version pid $pid ($goVersion $osArch, goexec starts in this executor: " +
      s"$startCount) devices: cpu $cpu; gpus $gpus"
}

/** `--selftest`: one barrier task per executor asks that executor's goexec
  * for its version and devices.
  */
object SelfTest {

  /** Number of executors now registered (the driver counts as the executor
    * in local mode).
    */
  def executorCount(sc: SparkContext): Int = {
    val all = sc.getExecutorMemoryStatus.size
    if (sc.isLocal) all else all - 1
  }

  private val LocalCluster = """local-cluster\[\s*(\d+)\s*,.*""".r

  /** The number of executors the application asked for, when it says:
    * local mode (1), local-cluster[N,...], spark.executor.instances, or
    * spark.cores.max / spark.executor.cores.
    */
  def expectedExecutors(sc: SparkContext): Option[Int] = {
    val conf = sc.getConf
    sc.master match {
      case m if sc.isLocal && !m.startsWith("local-cluster") => Some(1)
      case LocalCluster(n) => Some(n.toInt)
      case _ =>
        conf.getOption("spark.executor.instances").map(_.toInt).orElse(
          for {
            max <- conf.getOption("spark.cores.max")
            per <- conf.getOption("spark.executor.cores")
          } yield max.toInt / per.toInt)
    }
  }

  /** Waits until at least n executors are registered, woken by executor
    * events (no polling). Returns the number registered at the end.
    */
  def awaitExecutors(sc: SparkContext, n: Int, timeoutMs: Long): Int = {
    val lock = new ReentrantLock()
    val changed = lock.newCondition()
    val listener = new SparkListener {
      private def signal(): Unit = { lock.lock(); try changed.signalAll() finally lock.unlock() }
      override def onExecutorAdded(e: SparkListenerExecutorAdded): Unit = signal()
      override def onExecutorRemoved(e: SparkListenerExecutorRemoved): Unit = signal()
      // executorCount counts block managers, which register after the executor.
      override def onBlockManagerAdded(e: SparkListenerBlockManagerAdded): Unit = signal()
      override def onBlockManagerRemoved(e: SparkListenerBlockManagerRemoved): Unit = signal()
    }
    sc.addSparkListener(listener)
    try {
      val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs)
      lock.lock()
      try {
        var left = deadline - System.nanoTime()
        while (executorCount(sc) < n && left > 0) left = changed.awaitNanos(left)
      } finally lock.unlock()
      executorCount(sc)
    } finally sc.removeSparkListener(listener)
  }

  /** Runs n barrier tasks, one per executor, each reporting its goexec. */
  def probe(sc: SparkContext, n: Int): Seq[SelfTestReport] = {
    sc.setJobDescription(s"GoCaffe selftest: ask goexec on $n executors")
    sc.parallelize(0 until n, n).barrier().mapPartitions { _ =>
      val ctx = BarrierTaskContext.get()
      val g = GoExecRuntime.get()
      val v = g.version()
      val d = g.devices()
      val cpu = d.getCpu
      val cpuText = s"${cpu.getLogicalCores} logical cores (${cpu.getUsableCores} usable)" +
        (if (cpu.getModel.nonEmpty) s" ${cpu.getModel}" else "") +
        (if (cpu.getKernels.nonEmpty) s", ${cpu.getKernels} kernels" else "")
      val gpuText =
        if (d.getGpusCount == 0) "none"
        else d.getGpusList.asScala.map(x => s"${x.getIndex}:${x.getName} ${x.getBusId}").mkString(", ")
      ctx.barrier()
      Iterator(SelfTestReport(g.executorId, g.host, g.pid, v.getVersion, v.getGoVersion, v.getOsArch,
        GoExecRuntime.startCount, cpuText, gpuText, g.workDir.toString))
    }.collect().toSeq.sortBy(_.executorId)
  }

  /** SIGKILLs every executor's goexec from inside a task, as the kernel's OOM
    * killer would, and waits until each executor has noticed.
    */
  def killAll(sc: SparkContext, n: Int): Seq[(String, Long)] = {
    sc.setJobDescription(s"GoCaffe selftest: kill goexec on $n executors")
    sc.parallelize(0 until n, n).barrier().mapPartitions { _ =>
      val g = GoExecRuntime.get()
      ProcessHandle.of(g.pid).ifPresent(p => p.destroyForcibly())
      if (!g.awaitExit(30000)) throw new IllegalStateException(s"goexec pid ${g.pid} did not exit after SIGKILL")
      Iterator((g.executorId, g.pid))
    }.collect().toSeq
  }

  /** Checks the reports: one per executor, each from a goexec started once. */
  def problems(reports: Seq[SelfTestReport], n: Int): Seq[String] = {
    val byExec = reports.groupBy(_.executorId)
    val dup = byExec.collect { case (id, rs) if rs.size > 1 =>
      s"${rs.size} selftest tasks ran on executor $id; give each executor one task slot " +
        "(spark.task.cpus = spark.executor.cores)"
    }
    val restarted = reports.filter(_.startCount != 1).map(r =>
      s"executor ${r.executorId} started goexec ${r.startCount} times, want 1")
    val pids = reports.groupBy(r => (r.host, r.pid)).collect { case ((h, p), rs) if rs.map(_.executorId).distinct.size > 1 =>
      s"executors ${rs.map(_.executorId).distinct.mkString(", ")} share goexec pid $p on $h"
    }
    val count = if (reports.size != n) Seq(s"got ${reports.size} reports, want $n") else Nil
    (dup ++ restarted ++ pids).toSeq ++ count
  }

  /** Runs the selftest and prints one line per executor. Returns the exit status. */
  def run(sc: SparkContext, clusterSize: Option[Int], killGoexec: Boolean, waitMs: Long,
          out: PrintStream, err: PrintStream): Int = {
    val n = clusterSize.orElse(expectedExecutors(sc)) match {
      case Some(want) =>
        val have = awaitExecutors(sc, want, waitMs)
        if (have < want) {
          err.println(s"GoCaffeRunner --selftest: only $have of $want executors registered within $waitMs ms")
          return 1
        }
        want
      case None => math.max(1, executorCount(sc))
    }
    out.println(s"selftest: application ${sc.applicationId} on ${sc.master}, $n executors")
    val reports = probe(sc, n)
    reports.foreach(r => out.println(r.line))
    val ps = problems(reports, n)
    if (ps.nonEmpty) {
      err.println(s"GoCaffeRunner --selftest failed:\n${ps.map("  - " + _).mkString("\n")}")
      return 1
    }
    out.println(s"selftest: ${reports.size} executors, each with one goexec that answered")
    if (killGoexec) {
      val killed = killAll(sc, n)
      out.println(s"selftest: killed goexec ${killed.sortBy(_._1).map { case (e, p) => s"pid $p on executor $e" }.mkString(", ")}")
      out.println("selftest: running the next task, which must fail and name the executor and goexec's last log lines")
      probe(sc, n) // throws: the job fails with GoExecDiedException's message
      err.println("GoCaffeRunner --selftest-kill-goexec: the task after the kill did not fail")
      return 1
    }
    0
  }
}
