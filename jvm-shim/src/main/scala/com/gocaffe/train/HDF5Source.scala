package com.gocaffe.train

import java.io.{BufferedInputStream, DataInputStream}
import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Paths}

import scala.collection.mutable.ArrayBuffer

import caffe.Caffe.{CoSDataParameter, LayerParameter}
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.apache.spark.util.SerializableConfiguration
import org.apache.spark.sql.{DataFrame, Row, SparkSession}
import org.apache.spark.sql.types._

/** Caffe's `HDF5Data` layer on Spark: hdf5_data_param.source lists HDF5
  * files, each top is filled from the dataset named like it (any integer or
  * float type, read as float), all of a file's datasets sharing the first
  * axis.
  *
  * The driver checks the list and every file's headers before training
  * (`goexec h5-split`: a missing file or dataset, first axes that differ, a
  * type that is no number, rows whose shape differs between files) and
  * rewrites the layer into a CoSData layer of one FLOAT_ARRAY top per
  * dataset ([[CaffeDataLayers]]); hdf5_data_param stays on it and marks it
  * as this source. The rows, file after file in list order, are cut into one
  * contiguous row range per rank of equal size (±1); the DataFrame has one
  * Spark partition per rank, not repartitioned afterwards, and a rank's task
  * runs `goexec h5-rows` on only the files its range touches (a file cut by
  * two ranges is opened by both, each keeping its own rows). The list and
  * the files are read in place from plain or file: paths that must exist on
  * every node, as a file: LMDB's. On any other Hadoop file system (hdfs:,
  * s3a:, ...; or any path with [[LmdbSource.RemoteReads]] set) the list is
  * read through Hadoop's FileSystem API, a file path in it taken on the
  * list's file system (a relative one beside the list); the driver checks
  * each file's headers from its first [[HeaderBytes]] (the whole file when
  * they are not enough), and a task
  * copies only the files its row range touches into a directory of its own,
  * reads its rows and deletes the copies.
  */
object HDF5Source {

  /** What h5-split found: each top's row shape, then each file's rows. */
  final case class Split(tops: Seq[(String, Seq[Int])], files: Seq[(Long, String)]) {
    def rows: Long = files.map(_._1).sum
  }

  /** Whether d is an HDF5Data layer [[CaffeDataLayers]] rewrote. */
  def isSource(d: DataLayer): Boolean = d.layer.getType == "CoSData" && d.layer.hasHdf5DataParam

  /** A local path for a plain or file: path (remote ones are copied: [[fetch]]). */
  private def local(path: String, what: String): String = {
    val p = new Path(path)
    val scheme = p.toUri.getScheme
    if (scheme != null && scheme != "file")
      throw new GoCaffeException(s"$what: $path: a $scheme: file is copied to the node that reads it, not read in place")
    val l = if (scheme == null) path else p.toUri.getPath
    if (!Files.exists(Paths.get(l))) throw new GoCaffeException(s"$what: $path does not exist on this node")
    l
  }

  /** The files a list on a remote file system names, as Hadoop paths: an
    * absolute path or URI as it is, a relative one beside the list.
    */
  private def remoteList(list: String, hadoop: Configuration, what: String): Seq[Path] = {
    val lp = new Path(list)
    val fs = lp.getFileSystem(hadoop)
    if (!fs.exists(lp)) throw new GoCaffeException(s"$what: the list $list does not exist")
    val in = fs.open(lp)
    val text = try new String(in.readAllBytes(), StandardCharsets.UTF_8) finally in.close()
    val files = text.split("\n").map(_.trim).filter(_.nonEmpty).toSeq
    if (files.isEmpty) throw new GoCaffeException(s"$what: hdf5_data_param.source $list lists no HDF5 file")
    files.map { f =>
      val p = new Path(f)
      if (p.isAbsolute || p.toUri.getScheme != null) fs.makeQualified(p) else new Path(lp.getParent, f)
    }
  }

  /** Copies f into dir under a name of its own (index i first). */
  private def fetch(f: Path, i: Int, dir: java.nio.file.Path, hadoop: Configuration, what: String): java.nio.file.Path = {
    val fs = f.getFileSystem(hadoop)
    if (!fs.exists(f)) throw new GoCaffeException(s"$what: HDF5 file $f does not exist")
    val to = dir.resolve(s"$i-${f.getName}")
    val in = fs.open(f)
    try Files.copy(in, to) finally in.close()
    to
  }

  private def deleteTree(dir: java.nio.file.Path): Unit = {
    val all = Files.walk(dir)
    try all.sorted(java.util.Comparator.reverseOrder[java.nio.file.Path]()).forEach(f => Files.deleteIfExists(f))
    finally all.close()
  }

  /** The Hadoop setting (spark.hadoop.gocaffe.hdf5.header-bytes) of how many
    * bytes of a remote HDF5 file the driver reads to check its headers
    * before it copies the whole file (default 1 MiB).
    */
  val HeaderBytes = "gocaffe.hdf5.header-bytes"

  /** Checks the list's files and counts their rows (headers only). */
  def split(list: String, tops: Seq[String], what: String, hadoop: Configuration): Split = {
    if (!LmdbSource.remotePath(list, hadoop)) return parse(new String(LmdbSource.run(
      Seq("h5-split", "-tops", tops.mkString(","), local(list, what)), what), StandardCharsets.UTF_8), tops)
    // Remote: each file copied to the driver in turn, checked alone; the
    // paths are the remote ones.
    val files = remoteList(list, hadoop, what)
    val headerBytes = hadoop.getLong(HeaderBytes, 1L << 20)
    var prefixes = 0
    val parts = files.zipWithIndex.map { case (f, i) =>
      val dir = Files.createTempDirectory("gocaffe-h5-split-")
      try {
        val one = dir.resolve("list.txt")
        def check(copy: java.nio.file.Path): String = {
          Files.write(one, (copy.toString + "\n").getBytes(StandardCharsets.UTF_8))
          new String(LmdbSource.run(Seq("h5-split", "-tops", tops.mkString(","), one.toString), what), StandardCharsets.UTF_8)
        }
        // The headers of a file h5py writes come first: a prefix of the
        // file is read, and the whole file only when the prefix is not
        // enough (or the file is shorter).
        val fs = f.getFileSystem(hadoop)
        if (!fs.exists(f)) throw new GoCaffeException(s"$what: HDF5 file $f does not exist")
        val len = fs.getFileStatus(f).getLen
        val fromPrefix =
          if (len <= headerBytes) None
          else {
            val copy = dir.resolve(s"$i-prefix-${f.getName}")
            val buf = new Array[Byte](headerBytes.toInt)
            val in = fs.open(f)
            try in.readFully(0L, buf) finally in.close()
            Files.write(copy, buf)
            try Some(check(copy)) catch { case _: GoCaffeException => None }
            finally Files.deleteIfExists(copy)
          }
        if (fromPrefix.isDefined) prefixes += 1
        val out = fromPrefix.getOrElse {
          val copy = fetch(f, i, dir, hadoop, what)
          try check(copy)
          catch { case e: GoCaffeException => throw new GoCaffeException(e.getMessage.replace(copy.toString, f.toString), e) }
        }
        val sp = parse(out, tops)
        Split(sp.tops, sp.files.map { case (n, _) => (n, f.toString) })
      } finally deleteTree(dir)
    }
    System.err.println(s"GoCaffe: $what: headers of $prefixes of ${files.size} files read from their first " +
      s"$headerBytes bytes, the others from whole copies")
    for (k <- 1 until parts.size; (a, b) <- parts(k).tops.zip(parts.head.tops) if a._2 != b._2)
      throw new GoCaffeException(s"$what: HDF5 file ${files(k)}: dataset \"${a._1}\" has rows of shape " +
        s"[${a._2.mkString(" ")}], the first file's (${files.head}) [${b._2.mkString(" ")}]")
    Split(parts.head.tops, parts.flatMap(_.files))
  }

  private def parse(text: String, tops: Seq[String]): Split = {
    val out = text.split("\n").filter(_.nonEmpty).toSeq
    val (shapes, files) = out.splitAt(tops.size)
    Split(
      shapes.map { l =>
        val Array(name, dims) = l.split("\t", 2)
        name -> dims.split(" ").filter(_.nonEmpty).map(_.toInt).toSeq
      },
      files.map { l =>
        val Array(n, p) = l.split("\t", 2)
        (n.toLong, p)
      })
  }

  /** The CoSData layer an HDF5Data layer is fed through. */
  def asCoSData(l: LayerParameter, s: Split): LayerParameter = {
    val p = l.getHdf5DataParam
    val cos = CoSDataParameter.newBuilder().setSource(p.getSource).setBatchSize(p.getBatchSize).setShuffle(p.getShuffle)
    for ((name, dims) <- s.tops) {
      val d = if (dims.isEmpty) Seq(1) else dims
      val t = CoSDataParameter.TopBlob.newBuilder().setName(name).setType(CoSDataParameter.DataType.FLOAT_ARRAY)
        .setSampleNumAxes(d.size).setChannels(d(0))
      if (d.size > 1) t.setHeight(d(1))
      if (d.size > 2) t.setWidth(d(2))
      cos.addTop(t)
    }
    l.toBuilder.setType("CoSData").setSourceClass("com.yahoo.ml.caffe.DataFrameSource").clearTransformParam()
      .setCosDataParam(cos).build()
  }

  /** Rank r's share: (file, first row, rows) pieces of the rows
    * [r·total/ranks, (r+1)·total/ranks) in list order.
    */
  def shares(files: Seq[(Long, String)], ranks: Int): Seq[Seq[(String, Long, Long)]] = {
    val total = files.map(_._1).sum
    val starts = files.scanLeft(0L)(_ + _._1)
    (0 until ranks).map { r =>
      val (lo, hi) = (total * r / ranks, total * (r + 1) / ranks)
      files.indices.flatMap { i =>
        val (a, b) = (math.max(lo, starts(i)), math.min(hi, starts(i + 1)))
        if (a < b) Some((files(i)._2, a - starts(i), b - a)) else None
      }
    }
  }

  /** The layer's files as a DataFrame of one partition per rank, a float
    * array column per top.
    */
  def read(spark: SparkSession, d: DataLayer, ranks: Int): DataFrame = {
    val p = d.layer.getHdf5DataParam
    val tops = d.layer.getTopList.toArray.map(_.toString).toSeq
    val what = s"data layer '${d.name}': HDF5 list ${p.getSource}"
    val s = split(p.getSource, tops, what, spark.sparkContext.hadoopConfiguration)
    val remote = LmdbSource.remotePath(p.getSource, spark.sparkContext.hadoopConfiguration)
    val hadoop = new SerializableConfiguration(spark.sparkContext.hadoopConfiguration)
    val sizes = s.tops.map(_._2.product)
    val parts = shares(s.files, ranks)
    System.err.println(s"GoCaffe: $what: ${s.rows} rows in ${s.files.size} files, ${parts.map(_.map(_._3).sum).mkString("/")} " +
      s"rows for $ranks ranks")
    val schema = StructType(tops.map(t => StructField(t, ArrayType(FloatType, containsNull = false), nullable = false)))
    val topArg = tops.mkString(",")
    val rdd = spark.sparkContext.parallelize(parts, ranks).mapPartitions { it =>
      it.flatMap(_.iterator.flatMap { case (file, start, count) =>
        readRows(what, file, topArg, sizes, start, count, if (remote) Some(hadoop.value) else None)
      })
    }
    rdd.setName(s"GoCaffe HDF5 ${p.getSource} (${s.rows} rows, ${s.files.size} files, $ranks partitions)")
    spark.createDataFrame(rdd, schema)
  }

  /** Rows [start, start + count) of file; with hadoop (a remote file) from
    * a copy of the file made for this read and deleted after it.
    */
  private def readRows(what: String, file: String, tops: String, sizes: Seq[Int], start: Long, count: Long,
                       hadoop: Option[Configuration]): Iterator[Row] = {
    val rows = ArrayBuffer.empty[Row]
    val t0 = System.nanoTime()
    val dir = hadoop.map(_ => Files.createTempDirectory("gocaffe-h5-"))
    try {
      val path = (hadoop, dir) match {
        case (Some(h), Some(d)) =>
          val c = fetch(new Path(file), 0, d, h, what)
          System.err.println(s"GoCaffe: $what: copied $file (${Files.size(c)} bytes) to executor " +
            s"${org.apache.spark.SparkEnv.get.executorId}")
          c.toString
        case _ => local(file, what)
      }
      LmdbSource.withGoExec(Seq("h5-rows", "-tops", tops, "-start", start.toString, "-count", count.toString,
        path), s"$what: $file") { in =>
        val din = new DataInputStream(new BufferedInputStream(in, 1 << 20))
        var i = 0L
        while (i < count) {
          rows += Row.fromSeq(sizes.map { n =>
            val a = new Array[Float](n)
            var j = 0
            while (j < n) { a(j) = din.readFloat(); j += 1 }
            a
          })
          i += 1
        }
      }
    } finally dir.foreach(deleteTree)
    System.err.println(s"GoCaffe: $what: $file rows [$start, ${start + count}) on executor " +
      s"${org.apache.spark.SparkEnv.get.executorId} in ${(System.nanoTime() - t0) / 1000000} ms")
    rows.iterator
  }
}
