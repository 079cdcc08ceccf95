package com.gocaffe.train

import scala.jdk.CollectionConverters._

import caffe.Caffe.{BlobProto, NetParameter, SolverState}

/** Sync mode `average`: the driver averages the ranks' weights and solver
  * history blob by blob (goexec/train/CONTRACT.md). Sums pair up in a binary tree, so
  * rounding does not grow with the number of ranks.
  */
object ModelAverage {

  /** Element-wise sum of two blobs of the same size (float and double data). */
  private def add(a: BlobProto, b: BlobProto, what: => String): BlobProto = {
    if (a.getDataCount != b.getDataCount || a.getDoubleDataCount != b.getDoubleDataCount)
      throw new IllegalStateException(s"$what: ranks returned blobs of different sizes " +
        s"(${a.getDataCount + a.getDoubleDataCount} vs ${b.getDataCount + b.getDoubleDataCount} values)")
    val out = a.toBuilder.clearData().clearDoubleData().clearDiff().clearDoubleDiff()
    var i = 0
    while (i < a.getDataCount) { out.addData(a.getData(i) + b.getData(i)); i += 1 }
    i = 0
    while (i < a.getDoubleDataCount) { out.addDoubleData(a.getDoubleData(i) + b.getDoubleData(i)); i += 1 }
    out.build()
  }

  private def scale(a: BlobProto, f: Double): BlobProto = {
    val out = a.toBuilder.clearData().clearDoubleData()
    a.getDataList.asScala.foreach(v => out.addData((v * f).toFloat))
    a.getDoubleDataList.asScala.foreach(v => out.addDoubleData(v * f))
    out.build()
  }

  private def tree[T](xs: IndexedSeq[T])(plus: (T, T) => T): T =
    if (xs.size == 1) xs.head
    else tree(xs.grouped(2).map(g => if (g.size == 2) plus(g(0), g(1)) else g(0)).toIndexedSeq)(plus)

  private def addNets(a: NetParameter, b: NetParameter): NetParameter = {
    if (a.getLayerCount != b.getLayerCount)
      throw new IllegalStateException(s"ranks returned nets with ${a.getLayerCount} and ${b.getLayerCount} layers")
    val out = a.toBuilder
    for (i <- 0 until a.getLayerCount) {
      val la = a.getLayer(i)
      val lb = b.getLayer(i)
      if (la.getName != lb.getName || la.getBlobsCount != lb.getBlobsCount)
        throw new IllegalStateException(s"ranks returned different layers at $i: ${la.getName} vs ${lb.getName}")
      val lo = out.getLayerBuilder(i)
      for (j <- 0 until la.getBlobsCount) lo.setBlobs(j, add(la.getBlobs(j), lb.getBlobs(j), s"layer ${la.getName} blob $j"))
    }
    out.build()
  }

  /** The average of the ranks' weights (binary NetParameters). */
  def averageWeights(ranks: Seq[Array[Byte]]): Array[Byte] = {
    val nets = ranks.map(NetParameter.parseFrom).toIndexedSeq
    val sum = tree(nets)(addNets)
    val f = 1.0 / nets.size
    val out = sum.toBuilder
    for (i <- 0 until sum.getLayerCount; j <- 0 until sum.getLayer(i).getBlobsCount)
      out.getLayerBuilder(i).setBlobs(j, scale(sum.getLayer(i).getBlobs(j), f))
    out.build().toByteArray
  }

  /** The average of the ranks' solver states: history averaged like the
    * weights; iter and current_step are the same on every rank.
    */
  def averageStates(ranks: Seq[Array[Byte]]): Array[Byte] = {
    val states = ranks.map(SolverState.parseFrom).toIndexedSeq
    val iters = states.map(_.getIter).distinct
    if (iters.size != 1) throw new IllegalStateException(s"ranks ended the round at different iterations: $iters")
    val sum = tree(states) { (a, b) =>
      if (a.getHistoryCount != b.getHistoryCount)
        throw new IllegalStateException(s"ranks returned ${a.getHistoryCount} and ${b.getHistoryCount} history blobs")
      val o = a.toBuilder
      for (k <- 0 until a.getHistoryCount) o.setHistory(k, add(a.getHistory(k), b.getHistory(k), s"history blob $k"))
      o.build()
    }
    val f = 1.0 / states.size
    val o = sum.toBuilder
    for (k <- 0 until sum.getHistoryCount) o.setHistory(k, scale(sum.getHistory(k), f))
    o.build().toByteArray
  }
}
