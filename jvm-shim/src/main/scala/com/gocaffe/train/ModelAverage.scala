package com.gocaffe.train

import scala.jdk.CollectionConverters._

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

/** The round's average (binary NetParameter and SolverState) and the seconds it took. */
final case class Averaged(weights: Array[Byte], state: Array[Byte], seconds: Double)

/** Sync mode `average`: the ranks' weights and solver history averaged blob
  * by blob (goexec/train/CONTRACT.md), without the driver ever holding more
  * than one model: the ranks' results stay on the executors, a shuffle sums
  * them in pieces of [[PieceValues]] values there (in double), and the
  * driver fetches the averaged pieces one partition at a time, writing each
  * at its place in the output bytes.
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
    * average is written. Returns the results and the average.
    */
  def roundAverage(ranks: RDD[RankResult],
                   run: RDD[(RankResult, Option[ModelLayout])] => Seq[(RankResult, Option[ModelLayout])])
      : (Seq[RankResult], Averaged) = {
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
      val out = new Writer(lay)
      summed.toLocalIterator.foreach { case (k, p) => out.put((k >>> 32).toInt, (k & 0xffffffffL).toInt, p) }
      val (w, s) = out.result()
      (meta.map(_._1), Averaged(w, s, (System.nanoTime() - t0) / 1e9))
    } finally cached.unpersist(blocking = false)
  }

  /** Writes the averaged NetParameter and SolverState bytes: the layout's
    * parts at once, each blob's packed values as their pieces arrive.
    */
  private final class Writer(lay: ModelLayout) {
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

    private val weights = new Array[Byte](toInt(lay.netHead.length + lay.layers.map(l => field(l.field, layerSize(l))).sum))
    private val state = new Array[Byte](toInt(lay.stateHead.length + lay.history.map(b => field(StateHistory, blobSize(b))).sum))
    /** Per blob (numbered as [[ModelLayout.blobs]]): the output and where its floats and doubles start. */
    private val places = scala.collection.mutable.ArrayBuffer[(Array[Byte], Int, Int)]()
    private var written = 0L

    private def blob(o: CodedOutputStream, buf: Array[Byte], fieldNum: Int, b: BlobLayout): Unit = {
      o.writeTag(fieldNum, WireFormat.WIRETYPE_LENGTH_DELIMITED)
      o.writeUInt32NoTag(toInt(blobSize(b)))
      o.writeRawBytes(b.head)
      var fAt, dAt = -1
      if (b.floats > 0) {
        o.writeTag(BlobData, WireFormat.WIRETYPE_LENGTH_DELIMITED)
        o.writeUInt32NoTag(b.floats * 4)
        fAt = buf.length - o.spaceLeft()
        skip(o, b.floats.toLong * 4)
      }
      if (b.doubles > 0) {
        o.writeTag(BlobDoubleData, WireFormat.WIRETYPE_LENGTH_DELIMITED)
        o.writeUInt32NoTag(b.doubles * 8)
        dAt = buf.length - o.spaceLeft()
        skip(o, b.doubles.toLong * 8)
      }
      places += ((buf, fAt, dAt))
    }

    private val zeros = new Array[Byte](1 << 16)
    private def skip(o: CodedOutputStream, n: Long): Unit = {
      var left = n
      while (left > 0) { val k = math.min(left, zeros.length.toLong).toInt; o.writeRawBytes(zeros, 0, k); left -= k }
    }

    locally {
      val o = CodedOutputStream.newInstance(weights)
      o.writeRawBytes(lay.netHead)
      lay.layers.foreach { l =>
        o.writeTag(l.field, WireFormat.WIRETYPE_LENGTH_DELIMITED)
        o.writeUInt32NoTag(toInt(layerSize(l)))
        o.writeRawBytes(l.head)
        l.blobs.foreach(b => blob(o, weights, l.blobField, b))
      }
      o.checkNoSpaceLeft()
      val s = CodedOutputStream.newInstance(state)
      s.writeRawBytes(lay.stateHead)
      lay.history.foreach(b => blob(s, state, StateHistory, b))
      s.checkNoSpaceLeft()
    }

    private val blobs = lay.blobs

    /** Writes piece p of blob bi (pieces number floats first, then doubles). */
    def put(bi: Int, p: Int, piece: Piece): Unit = {
      val b = blobs(bi)
      val (buf, fAt, dAt) = places(bi)
      val nf = (b.floats + PieceValues - 1) / PieceValues
      if (piece.floats != null) {
        var at = fAt + p * PieceValues * 4
        piece.floats.foreach { v =>
          val bits = java.lang.Float.floatToRawIntBits(v)
          buf(at) = bits.toByte; buf(at + 1) = (bits >>> 8).toByte
          buf(at + 2) = (bits >>> 16).toByte; buf(at + 3) = (bits >>> 24).toByte
          at += 4
        }
        written += piece.floats.length
      } else {
        var at = dAt + (p - nf) * PieceValues * 8
        piece.doubles.foreach { v =>
          var bits = java.lang.Double.doubleToRawLongBits(v)
          var k = 0
          while (k < 8) { buf(at + k) = bits.toByte; bits >>>= 8; k += 1 }
          at += 8
        }
        written += piece.doubles.length
      }
    }

    /** The two outputs, once every value has been written. */
    def result(): (Array[Byte], Array[Byte]) = {
      val want = blobs.map(b => b.floats.toLong + b.doubles).sum
      if (written != want) throw new IllegalStateException(s"the average got $written of $want values")
      (weights, state)
    }
  }
}
