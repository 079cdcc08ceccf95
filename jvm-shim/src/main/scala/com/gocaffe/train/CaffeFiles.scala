package com.gocaffe.train

import java.io.ByteArrayOutputStream
import java.nio.charset.StandardCharsets

import scala.jdk.CollectionConverters._

import caffe.Caffe.{LayerParameter, NetParameter, Phase, SolverParameter}
import com.google.protobuf.TextFormat
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path

/** A data layer of the net that the shim feeds from a Spark DataFrame.
  *
  * @param phase  TRAIN or TEST (the layer's include rule; both when it has none)
  * @param layer  the layer as parsed (sent to goexec, which decodes by it)
  * @param source where the data lives (memory_data_param.source, data_param.source, cos_data_param.source)
  * @param batch  the layer's batch size (per rank)
  */
final case class DataLayer(phase: Phase, layer: LayerParameter, source: String, format: String, batch: Int) {
  def name: String = layer.getName
}

/** The solver with its nets inlined, as goexec takes it, plus what the
  * driver schedules by. Built from the user's files on the driver; goexec
  * opens no paths.
  */
final case class SolverSpec(solverPath: String, solver: SolverParameter, trainData: Seq[DataLayer],
                            testData: Seq[DataLayer]) {
  def bytes: Array[Byte] = solver.toByteArray
  def maxIter: Int = solver.getMaxIter
  def display: Int = solver.getDisplay
  def testInterval: Int = solver.getTestInterval
  def snapshotEvery: Int = solver.getSnapshot
  def snapshotPrefix: String = solver.getSnapshotPrefix
}

/** Reads Caffe files through Hadoop's file systems (file:, hdfs:, s3a: ...). */
object CaffeFiles {

  /** Reads a whole file. */
  def readBytes(path: String, hadoop: Configuration): Array[Byte] = {
    val p = new Path(path)
    val fs = p.getFileSystem(hadoop)
    val in = try fs.open(p) catch {
      case e: java.io.FileNotFoundException => throw new GoCaffeException(s"$path: no such file", e)
    }
    try {
      val out = new ByteArrayOutputStream()
      in.transferTo(out)
      out.toByteArray
    } finally in.close()
  }

  def readText(path: String, hadoop: Configuration): String =
    new String(readBytes(path, hadoop), StandardCharsets.UTF_8)

  /** A path as given, or resolved beside `base` when relative (as Caffe and
    * goexec resolve a solver's net).
    */
  def resolveBeside(base: String, rel: String): String = {
    val r = new Path(rel)
    if (r.isAbsolute || r.toUri.getScheme != null) rel
    else {
      val parent = new Path(base).getParent
      if (parent == null) rel else new Path(parent, rel).toString
    }
  }

  private def parseText[B <: com.google.protobuf.Message.Builder](what: String, text: String, b: B): B = {
    try TextFormat.getParser.merge(text, b)
    catch {
      case e: TextFormat.ParseException => throw new GoCaffeException(s"$what: ${e.getMessage}", e)
    }
    b
  }

  /** Loads the solver and its nets (train net and test nets inlined), and
    * finds the data layers that read from Spark.
    */
  def loadSolver(solverPath: String, hadoop: Configuration): SolverSpec = {
    val sb = parseText(solverPath, readText(solverPath, hadoop), SolverParameter.newBuilder())
    def loadNet(rel: String): NetParameter = {
      val p = resolveBeside(solverPath, rel)
      parseText(p, readText(p, hadoop), NetParameter.newBuilder()).build()
    }
    if (sb.hasNet) {
      sb.setNetParam(loadNet(sb.getNet)); sb.clearNet()
    }
    if (sb.hasTrainNet) {
      sb.setTrainNetParam(loadNet(sb.getTrainNet)); sb.clearTrainNet()
    }
    if (sb.getTestNetCount > 0) {
      sb.getTestNetList.asScala.foreach(n => sb.addTestNetParam(loadNet(n)))
      sb.clearTestNet()
    }
    val solver = sb.build()
    if (!solver.hasNetParam && !solver.hasTrainNetParam)
      throw new GoCaffeException(s"$solverPath: the solver names no net (net, net_param, train_net or train_net_param)")
    if (solver.getMaxIter <= 0) throw new GoCaffeException(s"$solverPath: max_iter must be positive")
    val train = if (solver.hasTrainNetParam) solver.getTrainNetParam else solver.getNetParam
    val trainData = dataLayers(train, Phase.TRAIN)
    if (trainData.isEmpty)
      throw new GoCaffeException(s"$solverPath: the train net has no data layer with a source " +
        "(MemoryData memory_data_param.source, CoSData cos_data_param.source or Data data_param.source)")
    val testNet =
      if (solver.getTestNetParamCount > 0) Some(solver.getTestNetParam(0))
      else if (solver.hasNetParam) Some(solver.getNetParam)
      else None
    val testData = testNet.map(dataLayers(_, Phase.TEST)).getOrElse(Nil)
    SolverSpec(solverPath, solver, trainData, testData)
  }

  /** Whether the layer is in the net for the phase (phase rules only; stages
    * and levels are left to goexec).
    */
  private def inPhase(l: LayerParameter, phase: Phase): Boolean = {
    val inc = l.getIncludeList.asScala
    val exc = l.getExcludeList.asScala
    (inc.isEmpty || inc.exists(r => !r.hasPhase || r.getPhase == phase)) &&
      !exc.exists(r => r.hasPhase && r.getPhase == phase)
  }

  /** The data layers of a net in a phase that name a source. */
  def dataLayers(net: NetParameter, phase: Phase): Seq[DataLayer] =
    net.getLayerList.asScala.toSeq.filter(inPhase(_, phase)).flatMap { l =>
      l.getType match {
        case "MemoryData" if l.getMemoryDataParam.hasSource =>
          val m = l.getMemoryDataParam
          Some(DataLayer(phase, l, m.getSource, m.getDataframeFormat, m.getBatchSize))
        case "CoSData" if l.getCosDataParam.hasSource =>
          val c = l.getCosDataParam
          Some(DataLayer(phase, l, c.getSource, c.getDataframeFormat, c.getBatchSize))
        case "Data" if l.getDataParam.hasSource =>
          Some(DataLayer(phase, l, l.getDataParam.getSource, "", l.getDataParam.getBatchSize))
        case _ => None
      }
    }
}

/** A problem GoCaffe explains to the user (no stack trace needed). */
final class GoCaffeException(message: String, cause: Throwable = null) extends RuntimeException(message, cause)
