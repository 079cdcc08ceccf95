package com.gocaffe.train

import java.io.{BufferedInputStream, DataInputStream, EOFException}
import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path => JPath, Paths, StandardCopyOption}
import java.nio.file.attribute.PosixFilePermissions
import java.util.concurrent.ConcurrentHashMap

import scala.collection.mutable.ArrayBuffer

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.apache.spark.sql.{DataFrame, Row, SparkSession}
import org.apache.spark.sql.types._
import org.slf4j.LoggerFactory

import com.gocaffe.shim.GoExec

/** CaffeOnSpark's `com.yahoo.ml.caffe.LMDB` source: a Caffe LMDB of Datums
  * as an ImageDataFrame (id = key, label, channels, height, width, encoded,
  * data with raw pixels C×H×W as the Datum holds them).
  *
  * The driver cuts the database into `partitions` key ranges of equal
  * record counts (`goexec db-split`, as CaffeOnSpark's LmdbRDD does); each
  * task reads only its range (`goexec db-rows`). LMDB is read through mmap,
  * so a path on a remote Hadoop file system (hdfs:, s3a:, ...) is copied to
  * the reading node's local disk first: its `data.mdb`, once per JVM and
  * path, into java.io.tmpdir; `file:` and plain paths are read in place and
  * must exist on every node. Records that are not usable Datums are named in
  * the executor log and skipped; more than 1 % of a range fails the task,
  * naming the first keys.
  */
object LmdbSource {
  val Class = "com.yahoo.ml.caffe.LMDB"

  val Schema: StructType = StructType(Seq(
    StructField("id", StringType, nullable = false),
    StructField("label", StringType, nullable = false),
    StructField("channels", IntegerType, nullable = false),
    StructField("height", IntegerType, nullable = false),
    StructField("width", IntegerType, nullable = false),
    StructField("encoded", BooleanType, nullable = false),
    StructField("data", BinaryType, nullable = false)))

  private val log = LoggerFactory.getLogger("com.gocaffe.train.LmdbSource")

  /** The database as a DataFrame of `partitions` key ranges. */
  def read(spark: SparkSession, d: DataLayer, partitions: Int): DataFrame = {
    val source = d.source
    val local = localize(source, spark.sparkContext.hadoopConfiguration)
    val out = run(Seq("db-split", "-backend", "lmdb", "-parts", partitions.toString, local.toString),
      s"data layer '${d.name}': LMDB $source")
    val lines = new String(out, StandardCharsets.UTF_8).split("\n").map(_.trim).filter(_.nonEmpty)
    val count = lines.head.toLong
    val starts = lines.tail.toSeq
    val ranges = starts.indices.map(i => (i, starts(i), if (i + 1 < starts.size) starts(i + 1) else ""))
    log.info(s"LMDB $source: $count records in ${ranges.size} key ranges")
    val name = d.name
    val rdd = spark.sparkContext.parallelize(ranges, ranges.size).mapPartitions { it =>
      it.flatMap { case (i, start, end) => readRange(name, source, i, start, end) }
    }
    rdd.setName(s"GoCaffe LMDB $source ($count records, ${ranges.size} key ranges)")
    spark.createDataFrame(rdd, Schema)
  }

  /** Reads one key range [start, end) (hex keys) on this node. */
  private def readRange(layer: String, source: String, i: Int, start: String, end: String): Iterator[Row] = {
    val local = localize(source, new Configuration())
    val rows = ArrayBuffer.empty[Row]
    val what = s"data layer '$layer': LMDB $source key range $i"
    val t0 = System.nanoTime()
    val errText = withGoExec(Seq("db-rows", "-backend", "lmdb", "-start", start, "-end", end, local.toString), what) { in =>
      val din = new DataInputStream(new BufferedInputStream(in, 1 << 20))
      var done = false
      while (!done) {
        val kl = din.readInt()
        if (kl < 0) done = true
        else {
          val key = new Array[Byte](kl); din.readFully(key)
          val label = din.readInt(); val c = din.readInt(); val h = din.readInt(); val w = din.readInt()
          val enc = din.readByte() != 0
          val data = new Array[Byte](din.readInt()); din.readFully(data)
          rows += Row(new String(key, StandardCharsets.UTF_8), label.toString, c, h, w, enc, data)
        }
      }
    }
    val bad = errText.split("\n").count(_.startsWith("bad record"))
    System.err.println(f"GoCaffe: $what [$start%s, $end%s): ${rows.size} records on executor " +
      s"${org.apache.spark.SparkEnv.get.executorId}, $bad unusable, in ${(System.nanoTime() - t0) / 1000000} ms")
    if (bad > 0) errText.split("\n").filter(_.startsWith("bad record")).take(20).foreach(l => System.err.println(s"GoCaffe: $what: $l"))
    rows.iterator
  }

  private val localCopies = new ConcurrentHashMap[String, JPath]()

  /** A local directory holding the LMDB at source: the path itself for
    * file: and plain paths, else a copy of its data.mdb.
    */
  private[train] def localize(source: String, hadoop: Configuration): JPath = {
    val p = new Path(source)
    val scheme = p.toUri.getScheme
    if (scheme == null || scheme == "file") {
      val local = Paths.get(p.toUri.getPath)
      if (!Files.exists(local))
        throw new GoCaffeException(s"LMDB $source does not exist on this node (a file: path must exist on every node)")
      local
    } else localCopies.computeIfAbsent(source, _ => {
      val fs = p.getFileSystem(hadoop)
      val mdb = new Path(p, "data.mdb")
      if (!fs.exists(mdb)) throw new GoCaffeException(s"LMDB $source: $mdb does not exist")
      val dir = Files.createTempDirectory("gocaffe-lmdb-")
      dir.toFile.deleteOnExit()
      val in = fs.open(mdb)
      try Files.copy(in, dir.resolve("data.mdb"), StandardCopyOption.REPLACE_EXISTING) finally in.close()
      dir.resolve("data.mdb").toFile.deleteOnExit()
      log.info(s"LMDB $source copied to $dir (LMDB reads through mmap)")
      dir
    })
  }

  @volatile private var binary: JPath = _

  /** The jar's goexec, extracted once per JVM. */
  private def goexec(): JPath = synchronized {
    if (binary == null) {
      val dir = Files.createTempDirectory("gocaffe-lmdb-goexec-",
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
      val bin = dir.resolve("goexec")
      val in = Option(getClass.getClassLoader.getResourceAsStream(GoExec.BinaryResource)).getOrElse(
        throw new GoCaffeException(s"goexec binary ${GoExec.BinaryResource} is missing from the GoCaffe jar"))
      try Files.copy(in, bin, StandardCopyOption.REPLACE_EXISTING) finally in.close()
      Files.setPosixFilePermissions(bin, PosixFilePermissions.fromString("rwx------"))
      dir.toFile.deleteOnExit() // deleted after the binary (reverse order)
      bin.toFile.deleteOnExit()
      binary = bin
    }
    binary
  }

  /** Runs goexec with args and returns its stdout; a failure throws with its error. */
  private def run(args: Seq[String], what: String): Array[Byte] = {
    var out: Array[Byte] = null
    withGoExec(args, what)(in => out = in.readAllBytes())
    out
  }

  /** Runs goexec with args, hands its stdout to f, and returns its stderr;
    * a non-zero exit throws a GoCaffeException with goexec's message.
    */
  private def withGoExec(args: Seq[String], what: String)(f: java.io.InputStream => Unit): String = {
    val errFile = Files.createTempFile("gocaffe-lmdb-", ".err")
    try {
      val proc = new ProcessBuilder((goexec().toString +: args): _*).redirectError(errFile.toFile).start()
      proc.getOutputStream.close()
      val in = proc.getInputStream
      val readErr =
        try { f(in); None }
        catch { case e: EOFException => Some(e) }
        finally in.close()
      val code = proc.waitFor()
      val err = new String(Files.readAllBytes(errFile), StandardCharsets.UTF_8)
      if (code != 0 || readErr.isDefined) {
        val msg = err.split("\n").filterNot(_.startsWith("bad record")).mkString("\n").trim
          .stripPrefix(s"goexec ${args.head}: ")
        throw new GoCaffeException(s"$what: " + (if (msg.nonEmpty) msg else s"goexec ${args.head} exited with status $code"))
      }
      err
    } finally Files.deleteIfExists(errFile)
  }
}
