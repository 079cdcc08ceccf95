package com.gocaffe.train

import java.io.{ByteArrayInputStream, InvalidClassException, ObjectInputFilter, ObjectInputStream, ObjectStreamClass}

import scala.collection.mutable.ArrayBuffer

import org.apache.hadoop.io.BytesWritable
import org.apache.spark.sql.{DataFrame, Row, SparkSession}
import org.apache.spark.util.CollectionAccumulator

/** CaffeOnSpark's `com.yahoo.ml.caffe.SeqImageDataSource`: Hadoop
  * SequenceFiles of (key, value) BytesWritables, read with Spark as
  * CaffeOnSpark's SeqImageDataSource.makeRDD does, into the ImageDataFrame
  * rows every source is streamed to goexec as.
  *
  * The key is a Java-serialized `scala.Tuple2[String, String]` or
  * `com.yahoo.ml.dl.caffe.Pair[String, String]` (id, label: the value is an
  * encoded image, decoded to memory_data_param.channels), or a
  * `scala.Tuple6[String, String, Int, Int, Int, Boolean]` (id, label,
  * channels, height, width, encoded: the value is an encoded image of that
  * size, or raw pixels H×W×C as an OpenCV Mat holds them, turned into Caffe's
  * C×H×W here). Only those classes (and the strings and boxed numbers in
  * them) are deserialized. A record whose key is none of them, or whose raw
  * pixels do not fill its shape, is skipped and counted; the driver reports
  * them after the round as it does a database's ([[LmdbSource.reportUnusable]]).
  */
object SeqImageSource {
  val Class = "com.yahoo.ml.caffe.SeqImageDataSource"

  private val Allowed = Set("scala.Tuple2", "scala.Tuple6", "com.yahoo.ml.dl.caffe.Pair", "java.lang.String",
    "java.lang.Integer", "java.lang.Number", "java.lang.Boolean")

  /** The only classes a key may hold. */
  private val filter: ObjectInputFilter = (info: ObjectInputFilter.FilterInfo) =>
    Option(info.serialClass()) match {
      case None                                 => ObjectInputFilter.Status.UNDECIDED
      case Some(c) if Allowed.contains(c.getName) => ObjectInputFilter.Status.ALLOWED
      case Some(_)                              => ObjectInputFilter.Status.REJECTED
    }

  /** The tuple classes as this JVM has them: keys written by another Scala
    * version (CaffeOnSpark's 2.10/2.11) have the same fields but may carry
    * another serialVersionUID.
    */
  private val Tuples = Set("scala.Tuple2", "scala.Tuple6", "com.yahoo.ml.dl.caffe.Pair")

  private final class KeyStream(b: Array[Byte]) extends ObjectInputStream(new ByteArrayInputStream(b)) {
    override protected def resolveClass(d: ObjectStreamClass): Class[_] =
      if (Allowed.contains(d.getName)) super.resolveClass(d)
      else throw new InvalidClassException(d.getName, "not a key class (Tuple2, Tuple6 or Pair of strings and numbers)")

    override protected def readClassDescriptor(): ObjectStreamClass = {
      val d = super.readClassDescriptor()
      if (!Tuples.contains(d.getName)) d
      else Option(ObjectStreamClass.lookup(java.lang.Class.forName(d.getName, false, SeqImageSource.getClass.getClassLoader)))
        .filter(_.getFields.map(_.getName).sorted.sameElements(d.getFields.map(_.getName).sorted)).getOrElse(d)
    }
  }

  /** A key's fields: id, label, channels, height, width, encoded. */
  private[train] def decodeKey(bytes: Array[Byte]): Either[String, (String, String, Int, Int, Int, Boolean)] = {
    val obj =
      try {
        val in = new KeyStream(bytes) // reads the stream header: bytes that are no serialized object fail here
        try {
          in.setObjectInputFilter(filter)
          in.readObject()
        } finally in.close()
      } catch {
        case e: InvalidClassException => return Left(s"key holds ${e.getMessage}")
        case e: Exception => return Left(s"key is no Java-serialized object: $e")
      }
    // Channels, height and width 0: unknown, taken from memory_data_param
    // (CaffeOnSpark decodes such images to its channels).
    obj match {
      case (id: String, label: String) => Right((id, label, 0, 0, 0, true))
      case p: com.yahoo.ml.dl.caffe.Pair[_, _] => (p.first, p.second) match {
        case (id: String, label: String) => Right((id, label, 0, 0, 0, true))
        case _ => Left("key is a Pair of other than two strings")
      }
      case (id: String, label: String, c: Int, h: Int, w: Int, enc: Boolean) => Right((id, label, c, h, w, enc))
      case o => Left(s"key is a ${o.getClass.getName}, not a (id, label) Tuple2/Pair or a Tuple6 " +
        "(id, label, channels, height, width, encoded)")
    }
  }

  /** H×W×C pixels as C×H×W. */
  private[train] def hwcToChw(px: Array[Byte], c: Int, h: Int, w: Int): Array[Byte] =
    if (c == 1) px
    else {
      val out = new Array[Byte](px.length)
      var y = 0
      while (y < h) {
        var x = 0
        while (x < w) {
          var k = 0
          while (k < c) { out((k * h + y) * w + x) = px((y * w + x) * c + k); k += 1 }
          x += 1
        }
        y += 1
      }
      out
    }

  /** The SequenceFiles at d.source as an ImageDataFrame (LmdbSource.Schema). */
  def read(spark: SparkSession, d: DataLayer, ranks: Int,
           accIn: Option[CollectionAccumulator[String]] = None): DataFrame = {
    val source = d.source
    val what = s"data layer '${d.name}': SequenceFile $source"
    val sc = spark.sparkContext
    val acc = LmdbSource.accOr(spark, accIn, source)
    val (files, parts) =
      try {
        val f = sc.sequenceFile(source, classOf[BytesWritable], classOf[BytesWritable], ranks)
        (f, f.getNumPartitions)
      } catch { case e: Exception => throw new GoCaffeException(s"$what: ${e.getMessage}", e) }
    LmdbSource.track(what, -1L, parts, "file splits", acc)
    val rdd = files.mapPartitionsWithIndex { (p, it) =>
      val rows = ArrayBuffer.empty[Row]
      val bad = ArrayBuffer.empty[String]
      var n = 0L
      it.foreach { case (k, v) =>
        n += 1
        // Hadoop's reader reuses its Writables: copy.
        val parsed = if (k == null) Left("no key") else decodeKey(k.copyBytes())
        parsed match {
          case Left(why) => bad += s"record $n of split $p: $why"
          case Right((id, label, c, h, w, enc)) =>
            val data = if (v == null) null else v.copyBytes()
            if (data == null || data.isEmpty) bad += s"key ($id, $label): no image bytes"
            else if (!enc && (c <= 0 || h <= 0 || w <= 0 || data.length != c * h * w))
              bad += s"key ($id, $label): ${data.length} raw bytes for $c×$h×$w"
            else rows += Row(id, label, c, h, w, enc, if (enc) data else hwcToChw(data, c, h, w))
        }
      }
      if (bad.nonEmpty) bad.take(20).foreach(b => System.err.println(s"GoCaffe: $what split $p: unusable $b"))
      acc.add(s"$p\t$n\t${bad.size}\t${bad.take(5).mkString("\u0001")}")
      rows.iterator
    }
    rdd.setName(s"GoCaffe SequenceFile $source ($parts splits)")
    spark.createDataFrame(rdd, LmdbSource.Schema)
  }
}
