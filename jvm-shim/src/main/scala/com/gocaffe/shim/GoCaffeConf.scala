package com.gocaffe.shim

import java.io.{InputStreamReader, IOException}
import java.nio.charset.StandardCharsets
import java.nio.file.{Files, StandardCopyOption}
import java.nio.file.attribute.PosixFilePermissions
import java.util.{Properties, Map => JMap}
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicReference

import scala.jdk.CollectionConverters._

import org.apache.spark.SparkConf

/** GoCaffe's Spark settings are wrong; the message lists every problem. */
final class GoCaffeConfException(message: String) extends RuntimeException(message)

/** GoCaffe's `spark.gocaffe.*` settings as the registry in `sparkconf/`
  * resolved them (through `goexec conf-check`): every value checked and in
  * canonical form, defaults filled in, durations in milliseconds and sizes
  * in bytes. The shim keeps no default or check of its own; a key without a
  * value here has no default, and asking for it as required is a bug that
  * sparkconf's tests catch (they match the keys named in the shim against
  * the registry).
  */
final class GoCaffeConf private (val values: Map[String, String]) {

  /** A key's value; fails if the registry gave it none. */
  def string(key: String): String =
    values.getOrElse(key, throw new IllegalStateException(
      s"$key has no resolved value: it is not declared with a default in sparkconf/'s registry"))

  /** A key's value, None when unset and without a default. */
  def option(key: String): Option[String] = values.get(key)

  def long(key: String): Long = {
    val v = string(key)
    v.toLongOption.getOrElse(throw new IllegalStateException(s"$key: resolved value '$v' is not an integer"))
  }

  def int(key: String): Int = {
    val v = long(key)
    if (v.isValidInt) v.toInt else throw new IllegalStateException(s"$key: resolved value $v does not fit an Int")
  }

  /** A duration key's value in milliseconds. */
  def millis(key: String): Long = long(key)

  /** A size key's value in bytes. */
  def bytes(key: String): Long = long(key)

  def bool(key: String): Boolean = string(key) match {
    case "true"  => true
    case "false" => false
    case v       => throw new IllegalStateException(s"$key: resolved value '$v' is not true or false")
  }

  /** The values whose keys start with one of prefixes. */
  def under(prefixes: String*): Map[String, String] =
    values.filter { case (k, _) => prefixes.exists(k.startsWith) }
}

object GoCaffeConf {
  /** The keys goexec conf-check reads: GoCaffe's, and Spark's own that it checks. */
  private def relevant(key: String): Boolean =
    key.toLowerCase.startsWith("spark.gocaffe.") || key == "spark.dynamicAllocation.enabled"

  private val last = new AtomicReference[(Map[String, String], GoCaffeConf)](null)

  /** Checks conf's GoCaffe settings with the jar's goexec (`goexec
    * conf-check`) and returns them resolved; throws [[GoCaffeConfException]]
    * listing every problem. Repeated calls with the same settings reuse the
    * answer.
    */
  def resolve(conf: SparkConf): GoCaffeConf = {
    val input = conf.getAll.filter { case (k, _) => relevant(k) }.toMap
    val cached = last.get()
    if (cached != null && cached._1 == input) return cached._2
    val c = new GoCaffeConf(confCheck(input))
    last.set((input, c))
    c
  }

  /** Settings another process resolved (the driver, for the executors). */
  def fromResolved(values: JMap[String, String]): GoCaffeConf = new GoCaffeConf(values.asScala.toMap)

  private def confCheck(input: Map[String, String]): Map[String, String] = {
    val os = System.getProperty("os.name", "")
    val arch = System.getProperty("os.arch", "")
    if (os != "Linux" || !(arch == "amd64" || arch == "x86_64"))
      throw new GoCaffeConfException(s"GoCaffe's settings are checked by the jar's goexec, which runs on " +
        s"linux/amd64 only; this driver runs $os/$arch")
    val dir = Files.createTempDirectory("gocaffe-conf-",
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
    try {
      val bin = dir.resolve("goexec")
      val in = Option(getClass.getClassLoader.getResourceAsStream(GoExec.BinaryResource)).getOrElse(
        throw new IllegalStateException(s"goexec binary ${GoExec.BinaryResource} is missing from the GoCaffe jar"))
      try Files.copy(in, bin, StandardCopyOption.REPLACE_EXISTING) finally in.close()
      Files.setPosixFilePermissions(bin, PosixFilePermissions.fromString("rwx------"))
      val errFile = dir.resolve("conf-check.err")
      val proc = new ProcessBuilder(bin.toString, "conf-check").directory(dir.toFile)
        .redirectError(errFile.toFile).start()
      // The settings go through stdin: a secret never shows in a process list.
      val stdin = proc.getOutputStream
      try stdin.write(toJson(input).getBytes(StandardCharsets.UTF_8)) finally stdin.close()
      val props = new Properties()
      val out = new InputStreamReader(proc.getInputStream, StandardCharsets.UTF_8)
      try props.load(out) finally out.close()
      if (!proc.waitFor(60, TimeUnit.SECONDS)) {
        proc.destroyForcibly()
        throw new IllegalStateException("goexec conf-check did not finish in 60 s")
      }
      val code = proc.exitValue()
      if (code != 0) {
        val err = new String(Files.readAllBytes(errFile), StandardCharsets.UTF_8).trim.stripPrefix("goexec conf-check: ")
        throw new GoCaffeConfException(if (err.nonEmpty) err else s"goexec conf-check exited with status $code")
      }
      props.asScala.toMap
    } catch {
      case e: IOException => throw new IllegalStateException(s"running goexec conf-check: $e", e)
    } finally GoExec.deleteTree(dir)
  }

  /** A JSON object of strings. */
  private def toJson(m: Map[String, String]): String =
    m.toSeq.sorted.map { case (k, v) => s"${quote(k)}:${quote(v)}" }.mkString("{", ",", "}")

  private def quote(s: String): String = {
    val b = new StringBuilder("\"")
    s.foreach {
      case '"'            => b ++= "\\\""
      case '\\'           => b ++= "\\\\"
      case c if c < 0x20  => b ++= f"\\u${c.toInt}%04x"
      case c              => b += c
    }
    (b += '"').toString
  }
}
