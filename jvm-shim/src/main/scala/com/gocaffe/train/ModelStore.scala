package com.gocaffe.train

import java.io.{BufferedInputStream, IOException, InputStream, OutputStream}
import java.nio.ByteBuffer
import java.nio.channels.{Channels, FileChannel}
import java.nio.file.{Files, Path, StandardCopyOption, StandardOpenOption}
import java.util.UUID
import java.util.concurrent.atomic.AtomicLong

import scala.util.control.NonFatal

import com.google.protobuf.{CodedInputStream, CodedOutputStream, WireFormat}
import org.apache.spark.SparkContext
import org.apache.spark.sql.gocaffe.GoCaffeSparkBridge

/** Where a task reads one part of a model (a binary NetParameter or
  * SolverState): `size` bytes at `uri` on the driver's file server. The
  * empty part (a fresh start, where goexec initialises from the seed) has
  * no uri.
  */
final case class PartRef(uri: String, size: Long)

object PartRef {
  val Empty: PartRef = PartRef("", 0L)

  /** The part's bytes, streamed from the driver's file server (on an
    * executor, or on the driver itself in local mode).
    */
  def fetch(p: PartRef): Array[Byte] = {
    if (p.size == 0) return Array.emptyByteArray
    if (p.size > Int.MaxValue - 16)
      throw new IllegalStateException(s"${p.uri} is ${p.size} bytes, over the 2 GB protobuf limit")
    val buf = ByteBuffer.allocate(p.size.toInt)
    val ch = GoCaffeSparkBridge.openFromDriver(p.uri)
    try {
      while (buf.hasRemaining)
        if (ch.read(buf) < 0)
          throw new IOException(s"${p.uri}: the driver's file server sent ${buf.position()} of ${p.size} bytes")
      if (ch.read(ByteBuffer.allocate(1)) >= 0)
        throw new IOException(s"${p.uri}: the driver's file server sent more than the ${p.size} bytes expected")
    } finally ch.close()
    buf.array()
  }
}

/** A model part in a file of a [[ModelStore]]. */
final case class StoredPart(file: Path, ref: PartRef)

/** Training's model between rounds, on the driver's disk instead of its
  * heap: each part (weights, solver state) in a file of its own, which the
  * ranks fetch through Spark's RPC file server (as executors fetch
  * sc.addFile's files) and snapshots and tests read. A file is never
  * rewritten: each model goes to new files, and the old ones are deleted
  * once no round can start from them. close() deletes the directory.
  */
final class ModelStore private (dir: Path, baseUri: String) extends AutoCloseable {
  private val seq = new AtomicLong()

  /** A new file name for a part ("weights" or "state"); the file does not exist yet. */
  def newFile(what: String): Path = dir.resolve(f"${seq.incrementAndGet()}%06d-$what")

  /** The part that file (written completely, never to change) holds. */
  def stored(file: Path): StoredPart =
    StoredPart(file, PartRef(s"$baseUri/${file.getFileName}", Files.size(file)))

  /** Stores bytes as a part; none for empty bytes (a fresh start). */
  def write(what: String, bytes: Array[Byte]): Option[StoredPart] =
    if (bytes == null || bytes.isEmpty) None
    else {
      val f = newFile(what)
      Files.write(f, bytes, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)
      Some(stored(f))
    }

  /** Stores what in yields (streamed, never whole in memory); none for an empty stream. */
  def copy(what: String, in: InputStream): Option[StoredPart] = {
    val f = newFile(what)
    try Files.copy(in, f, StandardCopyOption.REPLACE_EXISTING)
    catch { case NonFatal(e) => Files.deleteIfExists(f); throw e }
    if (Files.size(f) == 0) { Files.delete(f); None } else Some(stored(f))
  }

  /** Deletes the model's files. */
  def delete(m: Model): Unit = Seq(m.weights, m.state).flatten.foreach(p => Files.deleteIfExists(p.file))

  override def close(): Unit = {
    val files = Files.list(dir)
    try files.forEach { f => Files.deleteIfExists(f); () } finally files.close()
    Files.deleteIfExists(dir)
  }
}

object ModelStore {
  /** A store in a new directory under the driver's Spark local directory. */
  def open(sc: SparkContext): ModelStore = {
    val dir = GoCaffeSparkBridge.driverTempDir(sc, "gocaffe-model")
    val uri = GoCaffeSparkBridge.serveDirectory(sc, s"gocaffe-model-${UUID.randomUUID()}", dir)
    new ModelStore(dir.toPath, uri)
  }
}

/** A binary protobuf message's top-level fields, rewritten from a file
  * without holding the message in memory (a 60 M-parameter model's
  * solver state is 240 MB).
  */
private[train] object ProtoFields {
  /** Copies the message in src to out with its top-level fields in field
    * number order (a repeated field's values keep theirs), as protobuf-java
    * writes a message, and the string field `field` set to value (left out
    * when value is None).
    */
  def rewrite(src: Path, out: OutputStream, field: Int, value: Option[String]): Unit = {
    val ch = FileChannel.open(src, StandardOpenOption.READ)
    try {
      // Each top-level field: its number and where its bytes (tag included) are.
      val index = scala.collection.mutable.ArrayBuffer.empty[(Int, Long, Long)]
      val in = CodedInputStream.newInstance(new BufferedInputStream(Channels.newInputStream(ch), 1 << 16))
      try {
        while (!in.isAtEnd) {
          val start = in.getTotalBytesRead.toLong
          val tag = in.readTag()
          if (!in.skipField(tag)) throw new IOException(s"$src: an end-group tag at byte $start")
          index += ((WireFormat.getTagFieldNumber(tag), start, in.getTotalBytesRead.toLong))
        }
      } catch {
        case e: com.google.protobuf.InvalidProtocolBufferException =>
          throw new IOException(s"$src: not a protobuf message (${e.getMessage})", e)
      }
      val sink = Channels.newChannel(out)
      def put(): Unit = value.foreach { v =>
        val o = CodedOutputStream.newInstance(out)
        o.writeString(field, v)
        o.flush()
      }
      var placed = false
      index.sortBy(_._1).foreach { case (f, start, end) =>
        if (!placed && f > field) { put(); placed = true }
        if (f != field) {
          var at = start
          while (at < end) at += ch.transferTo(at, end - at, sink)
        }
      }
      if (!placed) put()
    } finally ch.close()
  }
}
