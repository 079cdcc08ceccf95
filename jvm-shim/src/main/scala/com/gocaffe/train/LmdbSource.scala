package com.gocaffe.train

import java.io.{BufferedInputStream, DataInputStream, EOFException}
import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path => JPath, Paths, StandardCopyOption}
import java.nio.file.attribute.PosixFilePermissions
import java.util.concurrent.ConcurrentLinkedQueue

import scala.collection.mutable.ArrayBuffer
import scala.jdk.CollectionConverters._

import caffe.Caffe.{DataParameter, LayerParameter}

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.apache.spark.sql.{DataFrame, Row, SparkSession}
import org.apache.spark.sql.types._
import org.apache.spark.util.{CollectionAccumulator, SerializableConfiguration}
import org.slf4j.LoggerFactory

import com.gocaffe.shim.GoExec

/** Where a task reports the rows goexec dropped as unusable when it loaded
  * a partition (an image that does not decode or does not fit the layer):
  * the accumulator of the source's [[LmdbSource.track]]. counted: the
  * source's reader already counted the records it read (LMDB, LevelDB,
  * SequenceFile), so goexec's entry adds only its unusable rows to them.
  */
final case class UnusableSink(acc: CollectionAccumulator[String], counted: Boolean) {
  /** One entry per partition loaded, under the part id -(partition + 1)
    * (a reader's own parts are >= 0).
    */
  def add(partition: Int, rows: Long, unusable: Long, named: Seq[String]): Unit = {
    val names = named.take(5).map(_.replaceAll("[\t\u0001\n]", " ")).mkString("\u0001")
    acc.add(s"${-(partition + 1)}\t${if (counted) 0L else rows + unusable}\t$unusable\t$names")
  }
}

/** CaffeOnSpark's `com.yahoo.ml.caffe.LMDB` source, and Caffe's `Data`
  * layer on Spark (LMDB or LevelDB, rewritten by [[CaffeDataLayers]] into
  * this source): a database of Datums as an ImageDataFrame (id = key, label,
  * channels, height, width, encoded, data with raw pixels C×H×W as the Datum
  * holds them).
  *
  * The driver cuts the database into key ranges of equal record counts
  * (`goexec db-split`, as CaffeOnSpark's LmdbRDD does): `-lmdb_partitions`
  * of them, at least one per rank. The DataFrame has exactly one Spark
  * partition per rank, partition r holding ranges r, r + ranks, ...; it is
  * not repartitioned afterwards, so the rank that trains on a partition is
  * the task that reads its ranges, and no node reads the others' records.
  * An LMDB on a remote Hadoop file system (hdfs:, s3a:, ...) is read on the
  * JVM with positioned reads of only the pages a range needs
  * ([[RemoteLmdb]]; the driver cuts the ranges from the branch pages);
  * `file:` and plain paths are read in place by `goexec db-rows` (mmap) and
  * must exist on every node, unless [[PositionedReads]] is set. A LevelDB
  * on a remote file system (or any LevelDB with [[RemoteReads]] set) is cut
  * by the driver from its MANIFEST and live log alone (`goexec ldb-plan`:
  * key ranges at tables' boundaries and log keys, of about equal bytes);
  * each task copies only
  * the live tables that overlap its range and the live log into a
  * directory of its own under java.io.tmpdir, reads the range
  * (`goexec db-rows -files`) and deletes the copies.
  *
  * Records that are not usable Datums are skipped and counted per range;
  * goexec drops the rows whose image does not decode or does not fit the
  * layer when the rank loads its partition ([[UnusableSink]]). The driver
  * prints one summary line per database after the round that read it
  * ([[reportUnusable]]), naming the first keys, and more than
  * [[MaxUnusableShare]] of the records read is an error naming the first few.
  */
object LmdbSource {
  val Class = "com.yahoo.ml.caffe.LMDB"

  /** The share of a database's records that may be unusable (skipped);
    * goexec's data.DefaultMaxBadShare, the same bound as goexec train's.
    */
  val MaxUnusableShare = 0.01

  /** How many unusable records a range's report names. */
  private val NamedPerRange = 5

  val Schema: StructType = StructType(Seq(
    StructField("id", StringType, nullable = false),
    StructField("label", StringType, nullable = false),
    StructField("channels", IntegerType, nullable = false),
    StructField("height", IntegerType, nullable = false),
    StructField("width", IntegerType, nullable = false),
    StructField("encoded", BooleanType, nullable = false),
    StructField("data", BinaryType, nullable = false)))

  private val log = LoggerFactory.getLogger("com.gocaffe.train.LmdbSource")

  /** The backend a layer's database is read with: a Data layer rewritten by
    * [[CaffeDataLayers]] keeps its data_param (LEVELDB is Caffe's default);
    * CaffeOnSpark's LMDB source class means LMDB.
    */
  def backendOf(layer: LayerParameter): String =
    if (layer.hasDataParam && layer.getDataParam.getBackend != DataParameter.DB.LMDB) "leveldb" else "lmdb"

  private def label(backend: String): String = if (backend == "lmdb") "LMDB" else "LevelDB"

  /** The sample shape (C, H, W) a Caffe Data layer takes from the database's
    * first usable record, encoded images decoded as force_color/force_gray say.
    */
  def shapeOf(source: String, backend: String, forceColor: Boolean, forceGray: Boolean, what: String,
              hadoop: Configuration): (Int, Int, Int) = {
    if (positioned(source, backend, hadoop)) return remoteShape(source, forceColor, forceGray, what, hadoop)
    if (remoteLevelDB(source, backend, hadoop)) return remoteLevelDBShape(source, forceColor, forceGray, what, hadoop)
    val local = localize(source, backend, hadoop)
    val args = Seq("db-split", "-backend", backend, "-shape") ++
      (if (forceColor) Seq("-force-color") else Nil) ++ (if (forceGray) Seq("-force-gray") else Nil) :+ local.toString
    val out = new String(run(args, what), StandardCharsets.UTF_8).split("\n")
    out.head.trim.split(" ").map(_.toInt) match {
      case Array(c, h, w) => (c, h, w)
      case _ => throw new GoCaffeException(s"$what: goexec db-split -shape printed '${out.head}'")
    }
  }

  /** What the driver learns of the records read, per source: records is
    * the count the driver knows beforehand (-1: unknown), parts the key
    * ranges or file splits the tasks read.
    */
  private final class Unusable(val what: String, val records: Long, val parts: Int, val unit: String,
                               val acc: CollectionAccumulator[String], val quiet: Boolean) {
    @volatile var reported = 0 // parts in the last summary
  }

  private val unusable = new ConcurrentLinkedQueue[Unusable]()

  /** Has [[reportUnusable]] report what the tasks of a source add to acc:
    * one entry per part read, "part \t records \t unusable \t the first
    * unusable records named, \u0001-separated" (parts < 0: partitions
    * goexec loaded, [[UnusableSink]]). quiet: no line while none is unusable.
    */
  private[train] def track(what: String, records: Long, parts: Int, unit: String, acc: CollectionAccumulator[String],
                           quiet: Boolean = false): Unit =
    unusable.add(new Unusable(what, records, parts, unit, acc, quiet))

  /** The database as a DataFrame of one partition per rank, each holding
    * its share of the `partitions` key ranges (at least `ranks` of them).
    */
  def read(spark: SparkSession, d: DataLayer, partitions: Int, ranks: Int,
           accIn: Option[CollectionAccumulator[String]] = None): DataFrame = {
    val source = d.source
    val backend = backendOf(d.layer)
    val what = s"data layer '${d.name}': ${label(backend)} $source"
    val cuts = math.max(partitions, ranks)
    if (cuts != partitions)
      log.info(s"$what: $partitions key ranges asked for, $cuts read (at least one per rank)")
    val byPages = positioned(source, backend, spark.sparkContext.hadoopConfiguration)
    val byTables = remoteLevelDB(source, backend, spark.sparkContext.hadoopConfiguration)
    // A remote LevelDB's ranges, each with the files it needs (empty: none).
    val plan: Seq[LevelDBRange] =
      if (byTables) levelDBPlan(source, cuts, spark.sparkContext.hadoopConfiguration, what) else Nil
    val (count, starts) =
      if (byTables) (-1L, plan.map(_.start))
      else if (byPages) {
        val db = RemoteLmdb.open(source, spark.sparkContext.hadoopConfiguration)
        try {
          val keys = db.splitKeys(cuts).map(hex)
          log.info(s"$what: ${db.entries} records; key ranges cut from the branch pages (${db.pagesRead} pages read)")
          (db.entries, keys)
        } finally db.close()
      } else {
        val local = localize(source, backend, spark.sparkContext.hadoopConfiguration)
        val out = run(Seq("db-split", "-backend", backend, "-parts", cuts.toString, local.toString), what)
        val lines = new String(out, StandardCharsets.UTF_8).split("\n").map(_.trim).filter(_.nonEmpty)
        (lines.head.toLong, lines.tail.toSeq)
      }
    val ranges =
      if (byTables) plan.indices.map(i => (i, plan(i).start, plan(i).end))
      else starts.indices.map(i => (i, starts(i), if (i + 1 < starts.size) starts(i + 1) else ""))
    val files: Map[Int, Seq[String]] = plan.indices.map(i => i -> plan(i).files).toMap
    log.info(s"$what: ${if (count >= 0) count.toString else "(uncounted)"} records in ${ranges.size} key ranges for $ranks ranks")
    val acc = accOr(spark, accIn, source)
    track(what, count, ranges.size, "key ranges", acc)
    val groups = (0 until ranks).map(r => ranges.filter(_._1 % ranks == r))
    val name = d.name
    // The driver's Hadoop settings (spark.hadoop.*: an s3a key, an hdfs
    // name service) travel with the tasks.
    val hadoop = new SerializableConfiguration(spark.sparkContext.hadoopConfiguration)
    val rdd = spark.sparkContext.parallelize(groups, ranks).mapPartitions { it =>
      it.flatMap(_.iterator.flatMap { case (i, start, end) =>
        if (byTables) readLevelDBRange(name, source, i, start, end, files(i), acc, hadoop.value)
        else readRange(name, source, backend, i, start, end, acc, byPages, hadoop.value)
      })
    }
    rdd.setName(s"GoCaffe ${label(backend)} $source ($count records, ${ranges.size} key ranges, $ranks partitions)")
    spark.createDataFrame(rdd, Schema)
  }

  /** Whether the layer's data comes from this source: one partition per
    * rank that must not be repartitioned.
    */
  def isSource(d: DataLayer): Boolean = d.layer.getSourceClass == Class

  /** Prints one line per database whose ranges were read since the last
    * call: records read, how many were unusable and the first of them by
    * key. More than [[MaxUnusableShare]] of them is a GoCaffeException
    * naming the first few. Called by the driver after each round.
    */
  def reportUnusable(say: String => Unit): Unit =
    unusable.asScala.foreach { u =>
      // A part read twice (a task retried) counts once.
      val byPart = u.acc.value.asScala.toSeq.map(_.split("\t", -1)).groupBy(_(0).toInt).map { case (p, es) => p -> es.head }
      if (byPart.size > u.reported) {
        u.reported = byPart.size
        // The reader's parts (>= 0), else the partitions goexec loaded.
        val read = byPart.keys.count(_ >= 0)
        val parts = if (read > 0) read else byPart.size
        val records = byPart.values.map(_(1).toLong).sum
        val bad = byPart.values.map(_(2).toLong).sum
        // The reader's first, then goexec's, each in part order.
        val named = byPart.toSeq.sortBy { case (p, _) => if (p >= 0) (0, p) else (1, -p) }
          .flatMap(_._2(3).split("\u0001").filter(_.nonEmpty))
        val first = if (named.isEmpty) "" else s"; first: ${named.take(NamedPerRange).mkString("; ")}"
        val of = if (u.records >= 0) s" of ${u.records}" else ""
        if (bad > 0 || !u.quiet)
          say(s"GoCaffe: ${u.what}: $records$of records read in $parts of ${u.parts} ${u.unit}, " +
            s"$bad unusable${if (bad > 0) " and skipped" else ""}$first")
        if (bad > MaxUnusableShare * records)
          throw new GoCaffeException(s"${u.what}: $bad of $records records unusable (at most " +
            f"${MaxUnusableShare * 100}%.0f %% may be)$first")
      }
    }

  /** Whether source is an LMDB on a remote Hadoop file system, read with
    * [[RemoteLmdb]]'s positioned reads of the pages a key range needs.
    */
  private[train] def remoteLmdb(source: String, backend: String): Boolean = {
    val scheme = new Path(source).toUri.getScheme
    backend == "lmdb" && scheme != null && scheme != "file"
  }

  /** The Hadoop setting (spark.hadoop.gocaffe.lmdb.positioned-reads=true on
    * spark-submit) that has every LMDB read with positioned reads through
    * Hadoop's FileSystem API, local ones (file: and plain paths) included.
    */
  val PositionedReads = "gocaffe.lmdb.positioned-reads"

  /** The Hadoop setting (spark.hadoop.gocaffe.remote-reads=true) that has
    * LevelDB databases and HDF5 files on file: and plain paths read as those
    * on a remote file system are: through Hadoop's FileSystem API, each task
    * copying only what its share needs.
    */
  val RemoteReads = "gocaffe.remote-reads"

  /** Whether source is read as a remote file system's: a scheme other than
    * file:, or [[RemoteReads]] set.
    */
  private[train] def remotePath(source: String, hadoop: Configuration): Boolean = {
    val scheme = new Path(source).toUri.getScheme
    (scheme != null && scheme != "file") || hadoop.getBoolean(RemoteReads, false)
  }

  /** Whether the LevelDB at source is read by key range from its MANIFEST. */
  private[train] def remoteLevelDB(source: String, backend: String, hadoop: Configuration): Boolean =
    backend == "leveldb" && remotePath(source, hadoop)

  /** Whether the LMDB at source is read with [[RemoteLmdb]]. */
  private[train] def positioned(source: String, backend: String, hadoop: Configuration): Boolean =
    remoteLmdb(source, backend) || (backend == "lmdb" && hadoop.getBoolean(PositionedReads, false))

  private def hex(b: Array[Byte]): String = b.map(x => f"${x & 0xff}%02x").mkString

  private def unhex(s: String): Array[Byte] = s.grouped(2).map(Integer.parseInt(_, 16).toByte).toArray

  /** A key as goexec's messages quote it (Go's %q for printable ASCII). */
  private def quote(k: Array[Byte]): String =
    "\"" + k.map(b => if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\') b.toChar.toString else f"\\x${b & 0xff}%02x").mkString + "\""

  /** A record's Datum, or why it is unusable (as goexec db-rows says). */
  private def datumOf(v: Array[Byte]): Either[String, caffe.Caffe.Datum] = {
    val d = try caffe.Caffe.Datum.parseFrom(v) catch {
      case e: com.google.protobuf.InvalidProtocolBufferException => return Left(s"not a Datum: ${e.getMessage}")
    }
    if (d.getData.isEmpty) Left("no data bytes (float_data Datums are not read on Spark, as in CaffeOnSpark)")
    else if (!d.getEncoded && d.getChannels.toLong * d.getHeight * d.getWidth != d.getData.size)
      Left(s"${d.getData.size} data bytes for ${d.getChannels}×${d.getHeight}×${d.getWidth}")
    else Right(d)
  }

  /** The first usable record's sample shape, read from a remote LMDB;
    * an encoded image's size and channels come from Java's ImageIO.
    */
  private def remoteShape(source: String, forceColor: Boolean, forceGray: Boolean, what: String,
                          hadoop: Configuration): (Int, Int, Int) = {
    val db = RemoteLmdb.open(source, hadoop)
    try {
      val first = db.records(Array.emptyByteArray, Array.emptyByteArray).map(_._2).map(datumOf).collectFirst {
        case Right(d) if !d.getEncoded => (d.getChannels, d.getHeight, d.getWidth)
        case Right(d) => Option(javax.imageio.ImageIO.read(d.getData.newInput())) match {
          case Some(img) =>
            val c = if (forceColor) 3 else if (forceGray) 1 else if (img.getColorModel.getNumColorComponents == 1) 1 else 3
            (c, img.getHeight, img.getWidth)
          case None => throw new GoCaffeException(s"$what: the first encoded image is no image Java can read")
        }
      }
      first.getOrElse(throw new GoCaffeException(s"$what: no usable record"))
    } finally db.close()
  }

  /** Reads one key range [start, end) (hex keys) of a remote LMDB on this
    * node, with positioned reads of the pages the range needs.
    */
  private def readRemoteRange(what: String, source: String, i: Int, start: String, end: String,
                              acc: CollectionAccumulator[String], hadoop: Configuration): Iterator[Row] = {
    val t0 = System.nanoTime()
    val db = RemoteLmdb.open(source, hadoop)
    val rows = ArrayBuffer.empty[Row]
    val bad = ArrayBuffer.empty[String]
    try db.records(unhex(start), unhex(end)).foreach { case (k, v) =>
      datumOf(v) match {
        case Left(why) => bad += s"key ${quote(k)}: $why"
        case Right(d) => rows += Row(new String(k, StandardCharsets.UTF_8), d.getLabel.toString, d.getChannels,
          d.getHeight, d.getWidth, d.getEncoded, d.getData.toByteArray)
      }
    } finally db.close()
    System.err.println(f"GoCaffe: $what [$start%s, $end%s): ${rows.size} records on executor " +
      s"${org.apache.spark.SparkEnv.get.executorId}, ${bad.length} unusable, in ${(System.nanoTime() - t0) / 1000000} ms " +
      s"(${db.pagesRead} pages of ${db.pageSize} bytes read)")
    bad.take(20).foreach(l => System.err.println(s"GoCaffe: $what: $l"))
    acc.add(s"$i\t${rows.size + bad.length}\t${bad.length}\t${bad.take(NamedPerRange).mkString("\u0001")}")
    rows.iterator
  }

  /** One key range of a remote LevelDB: hex start and end keys (empty:
    * unbounded) and the table and log files a reader of it needs; no files:
    * the range is empty.
    */
  final case class LevelDBRange(start: String, end: String, files: Seq[String])

  /** Cuts the remote LevelDB at source into parts key ranges from its
    * MANIFEST and logs alone: the driver copies CURRENT, the MANIFEST it
    * names and the logs (no table), lists the directory and runs
    * `goexec ldb-plan`. A missing directory, a
    * CURRENT naming no MANIFEST, a corrupt MANIFEST or a live table missing
    * from the directory is an error naming it.
    */
  private[train] def levelDBPlan(source: String, parts: Int, hadoop: Configuration, what: String): Seq[LevelDBRange] = {
    val p = new Path(source)
    val fs = p.getFileSystem(hadoop)
    if (!fs.exists(p) || !fs.getFileStatus(p).isDirectory)
      throw new GoCaffeException(s"$what: no such LevelDB directory")
    val listed = fs.listStatus(p).filter(_.isFile)
    val names = listed.map(_.getPath.getName).toSeq
    val sizes = listed.map(f => f.getPath.getName -> f.getLen).toMap
    if (!names.contains("CURRENT")) throw new GoCaffeException(s"$what: no CURRENT file (not a LevelDB directory)")
    val dir = Files.createTempDirectory("gocaffe-ldb-plan-")
    try {
      fetch(fs, new Path(p, "CURRENT"), dir)
      val manifest = new String(Files.readAllBytes(dir.resolve("CURRENT")), StandardCharsets.UTF_8).trim
      if (!manifest.startsWith("MANIFEST-") || manifest.contains("/") || !names.contains(manifest))
        throw new GoCaffeException(s"$what: CURRENT names '$manifest', which is no MANIFEST file of the directory")
      fetch(fs, new Path(p, manifest), dir)
      // The logs too (the live one is usually small): ldb-plan cuts their
      // keys, which may be all the records of a database never reopened.
      names.filter(_.endsWith(".log")).foreach(n => fetch(fs, new Path(p, n), dir))
      val listing = dir.resolve("listing")
      Files.write(listing, names.mkString("\n").getBytes(StandardCharsets.UTF_8))
      // goexec names the copies' directory; the message names the database.
      val out = new String(
        try run(Seq("ldb-plan", "-parts", parts.toString, "-listing", listing.toString, dir.toString), what)
        catch { case e: GoCaffeException => throw new GoCaffeException(e.getMessage.replace(s"LevelDB $dir: ", ""), e) },
        StandardCharsets.UTF_8).split("\n").filter(_.nonEmpty).toSeq
      val plan = out.map { l =>
        l.split("\t", -1) match {
          case Array("range", a, b, f) => LevelDBRange(a, b, f.split(",").filter(_.nonEmpty).toSeq)
          case Array("empty") => LevelDBRange("", "", Nil)
          case _ => throw new GoCaffeException(s"$what: goexec ldb-plan printed '$l'")
        }
      }
      val tables = names.count(n => n.endsWith(".ldb") || n.endsWith(".sst"))
      System.err.println(s"GoCaffe: $what: $parts key ranges cut from $manifest, tables per range: " +
        plan.map(_.files.count(f => !f.endsWith(".log"))).mkString("/") + s" of $tables table files")
      // Records still in the write-ahead log (a database written with a big
      // write buffer and never reopened, as Caffe's convert_imageset leaves
      // one under 256 MiB) are not sorted: every range copies the whole log.
      val logs = plan.flatMap(_.files).filter(_.endsWith(".log")).distinct
      val logBytes = logs.map(sizes.getOrElse(_, 0L)).sum
      val tableBytes = plan.flatMap(_.files).filterNot(_.endsWith(".log")).distinct.map(sizes.getOrElse(_, 0L)).sum
      val empty = plan.count(_.files.isEmpty)
      if (parts > 1 && logBytes > tableBytes / parts)
        System.err.println(s"GoCaffe: $what: every key range copies the whole live log (${logs.mkString(", ")}: " +
          s"$logBytes bytes, against $tableBytes bytes of tables); opening the database once with C++ LevelDB " +
          "(Caffe, plyvel) moves the log's records into tables")
      if (empty > 0)
        System.err.println(s"GoCaffe: $what: warning: $empty of $parts key ranges are empty (fewer table boundaries " +
          "and log keys than ranges)")
      plan
    } finally deleteTree(dir)
  }

  /** Copies file f of fs into dir. */
  private def fetch(fs: org.apache.hadoop.fs.FileSystem, f: Path, dir: JPath): JPath = {
    val to = dir.resolve(f.getName)
    val in = fs.open(f)
    try Files.copy(in, to, StandardCopyOption.REPLACE_EXISTING) finally in.close()
    to
  }

  private def deleteTree(dir: JPath): Unit =
    if (Files.exists(dir)) {
      val all = Files.walk(dir)
      try all.sorted(java.util.Comparator.reverseOrder[JPath]()).forEach(f => Files.deleteIfExists(f))
      finally all.close()
    }

  /** Reads key range i [start, end) of a remote LevelDB on this node: copies
    * only files (the range's tables and the live log) into a directory of
    * its own, streams the range with `goexec db-rows -files`, then deletes
    * the copies.
    */
  private def readLevelDBRange(layer: String, source: String, i: Int, start: String, end: String, files: Seq[String],
                               acc: CollectionAccumulator[String], hadoop: Configuration): Iterator[Row] = {
    val what = s"data layer '$layer': LevelDB $source key range $i"
    if (files.isEmpty) {
      System.err.println(s"GoCaffe: $what is empty (fewer table boundaries than ranges)")
      acc.add(s"$i\t0\t0\t")
      return Iterator.empty
    }
    val t0 = System.nanoTime()
    val p = new Path(source)
    val fs = p.getFileSystem(hadoop)
    val dir = Files.createTempDirectory("gocaffe-ldb-")
    try {
      var bytes = 0L
      files.foreach { f =>
        val from = new Path(p, f)
        if (!fs.exists(from)) throw new GoCaffeException(s"$what: $from (a live file of the database) does not exist")
        bytes += Files.size(fetch(fs, from, dir))
      }
      val args = Seq("db-rows", "-backend", "leveldb", "-files", files.mkString(","), "-max-bad", "1") ++
        (if (start.nonEmpty) Seq("-start", start) else Nil) ++ (if (end.nonEmpty) Seq("-end", end) else Nil) :+ dir.toString
      val (rows, bad) = streamRows(args, what)
      System.err.println(f"GoCaffe: $what [$start%s, $end%s): ${rows.size} records on executor " +
        s"${org.apache.spark.SparkEnv.get.executorId}, ${bad.length} unusable, in ${(System.nanoTime() - t0) / 1000000} ms " +
        s"(files read: ${files.mkString(",")}; $bytes bytes)")
      bad.take(20).foreach(l => System.err.println(s"GoCaffe: $what: $l"))
      acc.add(s"$i\t${rows.size + bad.length}\t${bad.length}\t${bad.take(NamedPerRange).mkString("\u0001")}")
      rows.iterator
    } finally deleteTree(dir)
  }

  /** The sample shape of a remote LevelDB's first usable record: the first
    * non-empty range's files are copied to the driver and its records read
    * until one is usable.
    */
  private def remoteLevelDBShape(source: String, forceColor: Boolean, forceGray: Boolean, what: String,
                                 hadoop: Configuration): (Int, Int, Int) = {
    val p = new Path(source)
    val fs = p.getFileSystem(hadoop)
    val plan = levelDBPlan(source, 16, hadoop, what).filter(_.files.nonEmpty)
    plan.iterator.map { r =>
      val dir = Files.createTempDirectory("gocaffe-ldb-shape-")
      try {
        r.files.foreach(f => fetch(fs, new Path(p, f), dir))
        val args = Seq("db-rows", "-backend", "leveldb", "-files", r.files.mkString(","), "-max-bad", "1") ++
          (if (r.start.nonEmpty) Seq("-start", r.start) else Nil) ++ (if (r.end.nonEmpty) Seq("-end", r.end) else Nil) :+
          dir.toString
        streamRows(args, what)._1.headOption.map { row =>
          if (!row.getBoolean(5)) (row.getInt(2), row.getInt(3), row.getInt(4))
          else Option(javax.imageio.ImageIO.read(new java.io.ByteArrayInputStream(row.getAs[Array[Byte]](6)))) match {
            case Some(img) =>
              val c = if (forceColor) 3 else if (forceGray) 1 else if (img.getColorModel.getNumColorComponents == 1) 1 else 3
              (c, img.getHeight, img.getWidth)
            case None => throw new GoCaffeException(s"$what: the first encoded image is no image Java can read")
          }
        }
      } finally deleteTree(dir)
    }.collectFirst { case Some(s) => s }.getOrElse(throw new GoCaffeException(s"$what: no usable record"))
  }

  /** Runs goexec db-rows with args: its rows, and the unusable records it named. */
  private def streamRows(args: Seq[String], what: String): (ArrayBuffer[Row], Array[String]) = {
    val rows = ArrayBuffer.empty[Row]
    val errText = withGoExec(args, what) { in =>
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
    (rows, errText.split("\n").filter(_.startsWith("bad record ")).map(_.stripPrefix("bad record ")))
  }

  /** Reads one key range [start, end) (hex keys) on this node. */
  private def readRange(layer: String, source: String, backend: String, i: Int, start: String, end: String,
                        acc: CollectionAccumulator[String], byPages: Boolean, hadoop: Configuration): Iterator[Row] = {
    val what = s"data layer '$layer': ${label(backend)} $source key range $i"
    if (byPages) return readRemoteRange(what, source, i, start, end, acc, hadoop)
    val local = localize(source, backend, hadoop)
    val t0 = System.nanoTime()
    // -max-bad 1: the driver decides on the share over all ranges.
    val (rows, bad) = streamRows(Seq("db-rows", "-backend", backend, "-max-bad", "1", "-start", start, "-end", end,
      local.toString), what)
    System.err.println(f"GoCaffe: $what [$start%s, $end%s): ${rows.size} records on executor " +
      s"${org.apache.spark.SparkEnv.get.executorId}, ${bad.length} unusable, in ${(System.nanoTime() - t0) / 1000000} ms")
    bad.take(20).foreach(l => System.err.println(s"GoCaffe: $what: $l"))
    acc.add(s"$i\t${rows.size + bad.length}\t${bad.length}\t${bad.take(NamedPerRange).mkString("\u0001")}")
    rows.iterator
  }

  /** acc, else a new accumulator for the source's unusable records. */
  private[train] def accOr(spark: SparkSession, acc: Option[CollectionAccumulator[String]],
                           source: String): CollectionAccumulator[String] =
    acc.getOrElse(spark.sparkContext.collectionAccumulator[String](s"GoCaffe unusable records of $source"))

  /** The local directory of a database at a file: or plain path (read in
    * place: every node must have it). Remote databases never come here: an
    * LMDB is read with [[RemoteLmdb]], a LevelDB by key range
    * ([[readLevelDBRange]]).
    */
  private[train] def localize(source: String, backend: String, hadoop: Configuration): JPath = {
    val p = new Path(source)
    val scheme = p.toUri.getScheme
    if (scheme != null && scheme != "file")
      throw new GoCaffeException(s"${label(backend)} $source: a $scheme: database is read by key range, not in place")
    val local = Paths.get(p.toUri.getPath)
    if (!Files.exists(local))
      throw new GoCaffeException(s"${label(backend)} $source does not exist on this node (a file: path must exist on every node)")
    local
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
  private[train] def run(args: Seq[String], what: String): Array[Byte] = {
    var out: Array[Byte] = null
    withGoExec(args, what)(in => out = in.readAllBytes())
    out
  }

  /** Runs goexec with args, hands its stdout to f, and returns its stderr;
    * a non-zero exit throws a GoCaffeException with goexec's message.
    */
  private[train] def withGoExec(args: Seq[String], what: String)(f: java.io.InputStream => Unit): String = {
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
