package com.gocaffe.train

import java.nio.{ByteBuffer, ByteOrder}
import java.nio.channels.{Channels, FileChannel}
import java.nio.file.{Files, Path, StandardOpenOption}

import scala.jdk.CollectionConverters._
import scala.util.control.NonFatal

import caffe.Caffe.{BlobProto, NetParameter, SolverState}
import com.google.protobuf.{CodedOutputStream, WireFormat}
import org.apache.spark.HashPartitioner
import org.apache.spark.rdd.RDD
import org.apache.spark.storage.StorageLevel

/** A blob's place in the averaged model: its bytes without data, and how
  * many float and double values its data holds.
  */
final case class BlobLayout(head: Array[Byte], floats: Int, doubles: Int)

/** A layer's bytes without blobs, and its blobs (field: LayerParameter's
  * blobs field number, or V1LayerParameter's).
  */
final case class LayerLayout(field: Int, head: Array[Byte], blobField: Int, blobs: Seq[BlobLayout])

/** The shape of one rank's weights and solver state without their values:
  * what the driver needs to write the average's bytes as the values arrive.
  */
final case class ModelLayout(netHead: Array[Byte], layers: Seq[LayerLayout], stateHead: Array[Byte],
                             history: Seq[BlobLayout]) {
  /** Every blob, weights first, then the history, in the order ranks number them. */
  def blobs: IndexedSeq[BlobLayout] = (layers.flatMap(_.blobs) ++ history).toIndexedSeq
}

/** The round's average (binary NetParameter and SolverState, in the
  * driver's [[ModelStore]]) and the seconds it took.
  */
final case class Averaged(weights: StoredPart, state: StoredPart, seconds: Double)

/** Sync mode `average`: the ranks' weights and solver history averaged blob
  * by blob (goexec/train/CONTRACT.md), without the driver ever holding a
  * model: the ranks' results stay on the executors, a shuffle sums them in
  * pieces of [[PieceValues]] values there (in double), and the driver
  * fetches the averaged pieces one partition at a time, writing each at its
  * place in the output files of its [[ModelStore]].
  */
object ModelAverage {
  /** Values per shuffled piece (4 MB of floats). */
  val PieceValues: Int = 1 << 20
  /** Bytes of averaged pieces the driver fetches at once (one partition). */
  private val FetchBytes: Long = 32L << 20

  private val NetLayer = NetParameter.LAYER_FIELD_NUMBER
  private val NetLayersV1 = NetParameter.LAYERS_FIELD_NUMBER
  private val LayerBlobs = caffe.Caffe.LayerParameter.BLOBS_FIELD_NUMBER
  private val V1LayerBlobs = caffe.Caffe.V1LayerParameter.BLOBS_FIELD_NUMBER
  private val StateHistory = SolverState.HISTORY_FIELD_NUMBER
  private val BlobData = BlobProto.DATA_FIELD_NUMBER
  private val BlobDoubleData = BlobProto.DOUBLE_DATA_FIELD_NUMBER

  private def blobLayout(b: BlobProto): BlobLayout =
    BlobLayout(b.toBuilder.clearData().clearDoubleData().clearDiff().clearDoubleDiff().build().toByteArray,
      b.getDataCount, b.getDoubleDataCount)

  /** The layout of one rank's result (taken from rank 0). */
  def layout(weights: Array[Byte], state: Array[Byte]): ModelLayout = {
    val net = NetParameter.parseFrom(weights)
    val layers = net.getLayerList.asScala.map { l =>
      LayerLayout(NetLayer, l.toBuilder.clearBlobs().build().toByteArray, LayerBlobs, l.getBlobsList.asScala.map(blobLayout).toSeq)
    } ++ net.getLayersList.asScala.map { l =>
      LayerLayout(NetLayersV1, l.toBuilder.clearBlobs().build().toByteArray, V1LayerBlobs, l.getBlobsList.asScala.map(blobLayout).toSeq)
    }
    val st = SolverState.parseFrom(state)
    ModelLayout(net.toBuilder.clearLayer().clearLayers().build().toByteArray, layers.toSeq,
      st.toBuilder.clearHistory().build().toByteArray, st.getHistoryList.asScala.map(blobLayout).toSeq)
  }

  /** A piece of one blob's values: floats or doubles. */
  final case class Piece(floats: Array[Float], doubles: Array[Double])

  /** Rank r's values as (blob << 32 | piece index) -> piece, every blob of
    * its weights, then of its history.
    */
  private def pieces(weights: Array[Byte], state: Array[Byte]): Iterator[(Long, Piece)] = {
    val net = NetParameter.parseFrom(weights)
    val blobs = (net.getLayerList.asScala.iterator.flatMap(_.getBlobsList.asScala) ++
      net.getLayersList.asScala.iterator.flatMap(_.getBlobsList.asScala) ++
      SolverState.parseFrom(state).getHistoryList.asScala.iterator).zipWithIndex
    blobs.flatMap { case (b, bi) =>
      val nf = (b.getDataCount + PieceValues - 1) / PieceValues
      val nd = (b.getDoubleDataCount + PieceValues - 1) / PieceValues
      Iterator.range(0, nf).map { p =>
        val from = p * PieceValues
        val a = new Array[Float](math.min(PieceValues, b.getDataCount - from))
        var i = 0
        while (i < a.length) { a(i) = b.getData(from + i); i += 1 }
        ((bi.toLong << 32) | p, Piece(a, null))
      } ++ Iterator.range(0, nd).map { p =>
        val from = p * PieceValues
        val a = new Array[Double](math.min(PieceValues, b.getDoubleDataCount - from))
        var i = 0
        while (i < a.length) { a(i) = b.getDoubleData(from + i); i += 1 }
        ((bi.toLong << 32) | (nf + p), Piece(null, a))
      }
    }
  }

  /** A running sum of pieces, in double. */
  final case class Sum(float: Boolean, values: Array[Double], ranks: Int)

  private def start(p: Piece): Sum =
    if (p.floats != null) Sum(float = true, p.floats.map(_.toDouble), 1) else Sum(float = false, p.doubles.clone(), 1)

  private def add(s: Sum, p: Piece): Sum = {
    val v = s.values
    if (p.floats != null) {
      if (p.floats.length != v.length) throw sizes(v.length, p.floats.length)
      var i = 0
      while (i < v.length) { v(i) += p.floats(i); i += 1 }
    } else {
      if (p.doubles.length != v.length) throw sizes(v.length, p.doubles.length)
      var i = 0
      while (i < v.length) { v(i) += p.doubles(i); i += 1 }
    }
    s.copy(ranks = s.ranks + 1)
  }

  private def merge(a: Sum, b: Sum): Sum = {
    if (a.values.length != b.values.length) throw sizes(a.values.length, b.values.length)
    var i = 0
    while (i < a.values.length) { a.values(i) += b.values(i); i += 1 }
    a.copy(ranks = a.ranks + b.ranks)
  }

  private def sizes(a: Int, b: Int) =
    new IllegalStateException(s"ranks returned blobs of different sizes ($a vs $b values in one piece)")

  /** Runs the round's barrier stage (ranks) through run, which returns every
    * rank's result without its weights and state (rank 0's layout beside
    * it); the weights and state stay cached on the executors until their
    * average is written to new files of store. Returns the results and the
    * average.
    */
  def roundAverage(ranks: RDD[RankResult],
                   run: RDD[(RankResult, Option[ModelLayout])] => Seq[(RankResult, Option[ModelLayout])],
                   store: ModelStore): (Seq[RankResult], Averaged) = {
    val cached = ranks.persist(StorageLevel.MEMORY_AND_DISK)
    try {
      val meta = run(cached.map { r =>
        (r.copy(weights = null, solverState = null), if (r.rank == 0) Some(layout(r.weights, r.solverState)) else None)
      })
      val t0 = System.nanoTime()
      val n = meta.size
      val lay = meta.flatMap(_._2).headOption.getOrElse(throw new IllegalStateException("rank 0 returned no model"))
      val blobs = lay.blobs
      val values = blobs.map(b => b.floats.toLong * 4 + b.doubles.toLong * 8).sum
      // Partitions of about FetchBytes each: the driver fetches one at a time.
      val parts = math.min(4096L, values / FetchBytes + 1).toInt
      val summed = cached.flatMap(r => pieces(r.weights, r.solverState))
        .combineByKey(start, add, merge, new HashPartitioner(parts), mapSideCombine = false)
        .map { case (k, s) =>
          if (s.ranks != n) throw new IllegalStateException(s"piece $k: ${s.ranks} ranks' values, want $n")
          val f = 1.0 / n
          if (s.float) (k, Piece(s.values.map(v => (v * f).toFloat), null)) else (k, Piece(null, s.values.map(_ * f)))
        }
      val (wFile, sFile) = (store.newFile("weights"), store.newFile("state"))
      val out = new Writer(lay, wFile, sFile)
      try {
        summed.toLocalIterator.foreach { case (k, p) => out.put((k >>> 32).toInt, (k & 0xffffffffL).toInt, p) }
        out.finish()
      } catch {
        case NonFatal(e) =>
          out.close()
          Files.deleteIfExists(wFile); Files.deleteIfExists(sFile)
          throw e
      }
      (meta.map(_._1), Averaged(store.stored(wFile), store.stored(sFile), (System.nanoTime() - t0) / 1e9))
    } finally cached.unpersist(blocking = false)
  }

  /** Writes the averaged NetParameter and SolverState to two new files: the
    * layout's parts at once, leaving a gap for each blob's packed values,
    * and the values into their gaps as their pieces arrive.
    */
  private final class Writer(lay: ModelLayout, weightsFile: Path, stateFile: Path) extends AutoCloseable {
    private def packedSize(b: BlobLayout): Long =
      (if (b.floats > 0) CodedOutputStream.computeTagSize(BlobData) +
        CodedOutputStream.computeUInt32SizeNoTag(b.floats * 4) + b.floats.toLong * 4 else 0L) +
        (if (b.doubles > 0) CodedOutputStream.computeTagSize(BlobDoubleData) +
          CodedOutputStream.computeUInt32SizeNoTag(b.doubles * 8) + b.doubles.toLong * 8 else 0L)
    private def blobSize(b: BlobLayout): Long = b.head.length + packedSize(b)
    private def field(num: Int, len: Long): Long =
      CodedOutputStream.computeTagSize(num) + CodedOutputStream.computeUInt32SizeNoTag(toInt(len)) + len
    private def layerSize(l: LayerLayout): Long = l.head.length + l.blobs.map(b => field(l.blobField, blobSize(b))).sum
    private def toInt(n: Long): Int =
      if (n > Int.MaxValue - 16) throw new IllegalStateException(s"the averaged model is $n bytes, over the 2 GB protobuf limit")
      else n.toInt

    private val weightsSize = toInt(lay.netHead.length + lay.layers.map(l => field(l.field, layerSize(l))).sum).toLong
    private val stateSize = toInt(lay.stateHead.length + lay.history.map(b => field(StateHistory, blobSize(b))).sum).toLong
    private val weights = FileChannel.open(weightsFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)
    private val state =
      try FileChannel.open(stateFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)
      catch { case NonFatal(e) => weights.close(); throw e }
    /** Per blob (numbered as [[ModelLayout.blobs]]): its file and where its floats and doubles start. */
    private val places = scala.collection.mutable.ArrayBuffer[(FileChannel, Long, Long)]()
    private var written = 0L

    /** Sequential protobuf output into ch, with gaps. */
    private final class Out(val ch: FileChannel) {
      val o: CodedOutputStream = CodedOutputStream.newInstance(Channels.newOutputStream(ch), 1 << 16)
      /** The file offset the next byte goes to. */
      def at: Long = { o.flush(); ch.position() }
      /** Leaves n bytes for [[put]]; returns where they start. */
      def gap(n: Long): Long = { val a = at; ch.position(a + n); a }
    }

    private def blob(out: Out, fieldNum: Int, b: BlobLayout): Unit = {
      val o = out.o
      o.writeTag(fieldNum, WireFormat.WIRETYPE_LENGTH_DELIMITED)
      o.writeUInt32NoTag(toInt(blobSize(b)))
      o.writeRawBytes(b.head)
      var fAt, dAt = -1L
      if (b.floats > 0) {
        o.writeTag(BlobData, WireFormat.WIRETYPE_LENGTH_DELIMITED)
        o.writeUInt32NoTag(b.floats * 4)
        fAt = out.gap(b.floats.toLong * 4)
      }
      if (b.doubles > 0) {
        o.writeTag(BlobDoubleData, WireFormat.WIRETYPE_LENGTH_DELIMITED)
        o.writeUInt32NoTag(b.doubles * 8)
        dAt = out.gap(b.doubles.toLong * 8)
      }
      places += ((out.ch, fAt, dAt))
    }

    private def ended(out: Out, size: Long, what: String): Unit = {
      val end = out.at
      if (end != size) throw new IllegalStateException(s"the averaged $what's layout took $end bytes, want $size")
    }

    try {
      val w = new Out(weights)
      w.o.writeRawBytes(lay.netHead)
      lay.layers.foreach { l =>
        w.o.writeTag(l.field, WireFormat.WIRETYPE_LENGTH_DELIMITED)
        w.o.writeUInt32NoTag(toInt(layerSize(l)))
        w.o.writeRawBytes(l.head)
        l.blobs.foreach(b => blob(w, l.blobField, b))
      }
      ended(w, weightsSize, "weights")
      val s = new Out(state)
      s.o.writeRawBytes(lay.stateHead)
      lay.history.foreach(b => blob(s, StateHistory, b))
      ended(s, stateSize, "solver state")
    } catch { case NonFatal(e) => close(); throw e }

    private val blobs = lay.blobs
    private val buf = ByteBuffer.allocate(PieceValues * 8).order(ByteOrder.LITTLE_ENDIAN)

    /** Writes piece p of blob bi (pieces number floats first, then doubles). */
    def put(bi: Int, p: Int, piece: Piece): Unit = {
      if (bi < 0 || bi >= blobs.size) throw new IllegalStateException(s"a piece of blob $bi; the model has ${blobs.size}")
      val b = blobs(bi)
      val (ch, fAt, dAt) = places(bi)
      val nf = (b.floats + PieceValues - 1) / PieceValues
      val (count, index, at0) =
        if (piece.floats != null) (b.floats, p, fAt) else (b.doubles, p - nf, dAt)
      val want = math.min(PieceValues.toLong, count.toLong - index.toLong * PieceValues)
      val got = if (piece.floats != null) piece.floats.length else piece.doubles.length
      if (index < 0 || want != got)
        throw new IllegalStateException(s"blob $bi: piece $p has $got values, want ${math.max(want, 0L)}")
      buf.clear()
      val bytes = if (piece.floats != null) {
        buf.asFloatBuffer().put(piece.floats)
        got * 4
      } else {
        buf.asDoubleBuffer().put(piece.doubles)
        got * 8
      }
      buf.limit(bytes)
      var at = at0 + index.toLong * PieceValues * (if (piece.floats != null) 4 else 8)
      while (buf.hasRemaining) at += ch.write(buf, at)
      written += got
    }

    /** Checks that every value has been written, and closes the files. */
    def finish(): Unit = {
      val want = blobs.map(b => b.floats.toLong + b.doubles).sum
      if (written != want) throw new IllegalStateException(s"the average got $written of $want values")
      if (weights.size() != weightsSize || state.size() != stateSize)
        throw new IllegalStateException(s"the averaged files are ${weights.size()} and ${state.size()} bytes, " +
          s"want $weightsSize and $stateSize")
      close()
    }

    override def close(): Unit =
      try weights.close() finally state.close()
  }
}
