package com.gocaffe.train

import java.nio.charset.StandardCharsets
import java.nio.file.{Files, StandardCopyOption}
import java.nio.file.attribute.PosixFilePermissions
import java.util.Locale

import scala.collection.mutable.ArrayBuffer

import com.gocaffe.shim.GoExec
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path

/** The validation curves of a Spark training run, written by the driver
  * beside the snapshots as PREFIX_metrics.jsonl (on any Hadoop file
  * system), in `goexec train`'s format: one JSON object per line with
  * iteration, phase ("train" or "test"), name, value and wall_time (Unix
  * seconds). Train records are each display's loss, averaged over the ranks;
  * their wall time is placed within the round by iteration (the ranks'
  * progress reaches the driver with the round's results). Test records are
  * the scores of each test phase. The file is rewritten after every test and
  * at the end, so a failed run keeps the curves up to its last test; at the
  * end the jar's goexec draws PREFIX_metrics.png from it.
  */
final class MetricsFile(val path: Path, hadoop: Configuration, resume: Boolean, say: String => Unit) {
  private val lines = ArrayBuffer.empty[String]
  private var skipped = 0

  if (resume) {
    val fs = path.getFileSystem(hadoop)
    if (fs.exists(path))
      lines ++= CaffeFiles.readText(path.toString, hadoop).split("\n").map(_.trim).filter(_.nonEmpty)
  }

  private def add(iter: Long, phase: String, name: String, value: Double, wall: Double): Unit =
    if (value.isNaN || value.isInfinite) skipped += 1
    else lines += MetricsFile.record(iter, phase, name, value, wall)

  /** A round's display points: the loss averaged over the ranks per iteration. */
  def train(ps: Seq[RankProgress], fromIter: Long, toIter: Long, startMs: Long, endMs: Long): Unit = synchronized {
    ps.groupBy(_.iter).toSeq.sortBy(_._1).foreach { case (it, rs) =>
      val frac = if (toIter > fromIter) (it - fromIter).toDouble / (toIter - fromIter) else 1.0
      val wall = (startMs + math.max(0.0, math.min(1.0, frac)) * (endMs - startMs)) / 1000.0
      add(it, "train", "loss", rs.map(_.loss).sum / rs.size, wall)
    }
  }

  /** A test phase's mean scores; the file is rewritten. Returns the scores' line. */
  def tested(iter: Long, t: TestScores): String = synchronized {
    val now = System.currentTimeMillis() / 1000.0
    t.means.foreach { case (name, v) => add(iter, "test", name, v, now) }
    write()
    t.line
  }

  /** Writes the file (temporary file, then rename). */
  def write(): Unit = synchronized {
    val bytes = lines.map(_ + "\n").mkString.getBytes(StandardCharsets.UTF_8)
    MetricsFile.writeAtomically(path, bytes, hadoop)
  }

  /** Writes the file and its plot, PREFIX_metrics.png, with the jar's
    * goexec; a plot that cannot be drawn is reported, not thrown: the model
    * is already saved.
    */
  def finish(): Unit = synchronized {
    write()
    say(s"GoCaffe: validation curves: $path (${lines.size} records" +
      (if (skipped > 0) s", $skipped NaN or infinite values left out" else "") + ")")
    if (lines.isEmpty) return
    val png = new Path(path.getParent, path.getName.stripSuffix(".jsonl") + ".png")
    try {
      MetricsFile.plot(lines.mkString("\n") + "\n", png, hadoop)
      say(s"GoCaffe: validation curves plotted: $png")
    } catch {
      case e: GoCaffeException => say(s"GoCaffe: no plot of the validation curves: ${e.getMessage}")
    }
  }
}

object MetricsFile {
  /** The metrics file beside a run's snapshots: DIR(model)/PREFIX_metrics.jsonl. */
  def beside(modelPath: String, prefixName: String, hadoop: Configuration, resume: Boolean,
             say: String => Unit): MetricsFile = {
    val dir = Option(new Path(modelPath).getParent).getOrElse(new Path("."))
    new MetricsFile(new Path(dir, s"${prefixName}_metrics.jsonl"), hadoop, resume, say)
  }

  /** One JSON line; names are escaped as JSON strings. */
  def record(iter: Long, phase: String, name: String, value: Double, wall: Double): String =
    s"""{"iteration":$iter,"phase":${quote(phase)},"name":${quote(name)},"value":${num(value)},""" +
      s""""wall_time":${String.format(Locale.ROOT, "%.3f", Double.box(wall))}}"""

  private def num(v: Double): String =
    if (v == math.rint(v) && math.abs(v) < 1e15) v.toLong.toString else java.lang.Double.toString(v)

  private def quote(s: String): String = {
    val b = new StringBuilder("\"")
    s.foreach {
      case '"'          => b ++= "\\\""
      case '\\'         => b ++= "\\\\"
      case c if c < ' ' => b ++= f"\\u${c.toInt}%04x"
      case c            => b += c
    }
    (b += '"').toString
  }

  private[train] def writeAtomically(path: Path, bytes: Array[Byte], hadoop: Configuration): Unit = {
    val fs = path.getFileSystem(hadoop)
    if (path.getParent != null) fs.mkdirs(path.getParent)
    val tmp = new Path(path.getParent, s".${path.getName}.tmp-${java.util.UUID.randomUUID()}")
    val out = fs.create(tmp, true)
    try out.write(bytes)
    catch {
      case e: Throwable => out.close(); fs.delete(tmp, false); throw e
    }
    out.close()
    if (fs.exists(path)) fs.delete(path, false)
    if (!fs.rename(tmp, path)) {
      fs.delete(tmp, false)
      throw new GoCaffeException(s"metrics: could not rename $tmp to $path")
    }
  }

  /** Runs `goexec plot` on a local copy of the records and writes the PNG to png. */
  private def plot(records: String, png: Path, hadoop: Configuration): Unit = {
    val os = System.getProperty("os.name", "")
    val arch = System.getProperty("os.arch", "")
    if (os != "Linux" || !Set("amd64", "x86_64").contains(arch))
      throw new GoCaffeException(s"the jar's goexec runs on linux/amd64 and this driver is $os/$arch; " +
        s"run `goexec plot ${png.getName.stripSuffix(".png")}.jsonl` elsewhere")
    val dir = Files.createTempDirectory("gocaffe-plot-",
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
    try {
      val bin = dir.resolve("goexec")
      val in = Option(getClass.getClassLoader.getResourceAsStream(GoExec.BinaryResource)).getOrElse(
        throw new GoCaffeException(s"goexec binary ${GoExec.BinaryResource} is missing from the GoCaffe jar"))
      try Files.copy(in, bin, StandardCopyOption.REPLACE_EXISTING) finally in.close()
      Files.setPosixFilePermissions(bin, PosixFilePermissions.fromString("rwx------"))
      val jsonl = dir.resolve(png.getName.stripSuffix(".png") + ".jsonl")
      Files.write(jsonl, records.getBytes(StandardCharsets.UTF_8))
      val out = dir.resolve("plot.png")
      val errFile = dir.resolve("plot.err")
      val proc = new ProcessBuilder(bin.toString, "plot", jsonl.toString, "-out", out.toString)
        .directory(dir.toFile).redirectErrorStream(true).redirectOutput(errFile.toFile).start()
      proc.getOutputStream.close()
      val code = proc.waitFor()
      if (code != 0)
        throw new GoCaffeException(s"goexec plot exited with status $code: " +
          new String(Files.readAllBytes(errFile), StandardCharsets.UTF_8).trim)
      writeAtomically(png, Files.readAllBytes(out), hadoop)
    } finally GoExec.deleteTree(dir)
  }
}
