package com.gocaffe.train

import java.io.ByteArrayOutputStream
import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Path => JPath, StandardCopyOption}
import java.nio.file.attribute.PosixFilePermissions

import scala.jdk.CollectionConverters._

import caffe.Caffe.{LayerParameter, NetParameter, Phase, SolverParameter}
import com.google.protobuf.TextFormat
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.slf4j.LoggerFactory

import com.gocaffe.shim.GoExec

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

  /** The layer's transform_param.mean_file, read on the driver (a binary
    * caffe.BlobProto, as Caffe's compute_image_mean writes it), or null when
    * it has none. The ranks get it with their partitions (goexec opens no
    * paths).
    */
  def meanOf(d: DataLayer, hadoop: Configuration): Array[Byte] = {
    val f = d.layer.getTransformParam.getMeanFile
    if (f.isEmpty) return null
    val what = s"data layer '${d.name}': transform_param.mean_file $f"
    val b = try readBytes(f, hadoop) catch { case e: GoCaffeException => throw new GoCaffeException(s"$what: ${e.getMessage}", e) }
    val bp = try caffe.Caffe.BlobProto.parseFrom(b) catch {
      case e: com.google.protobuf.InvalidProtocolBufferException =>
        throw new GoCaffeException(s"$what is not a binaryproto (caffe.BlobProto): ${e.getMessage}", e)
    }
    if (bp.getDataCount == 0 && bp.getDoubleDataCount == 0)
      throw new GoCaffeException(s"$what holds no values (not a mean image?)")
    b
  }

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

  private val log = LoggerFactory.getLogger("com.gocaffe.train.CaffeFiles")

  /** Whether this JVM can run the jar's goexec (linux/amd64 only). */
  private def canRunGoExec: Boolean =
    System.getProperty("os.name", "") == "Linux" &&
      Set("amd64", "x86_64").contains(System.getProperty("os.arch", "")) &&
      getClass.getClassLoader.getResource(GoExec.BinaryResource) != null

  /** Runs `goexec prepare` with args in dir; returns stdout, or throws a
    * GoCaffeException with goexec's error (which names the file and
    * line:column). Warnings on stderr are logged.
    */
  private def runPrepare(bin: JPath, dir: JPath, solverPath: String, args: Seq[String]): Array[Byte] = {
    val errFile = dir.resolve("prepare.err")
    val pb = new ProcessBuilder((Seq(bin.toString, "prepare") ++ args): _*)
      .directory(dir.toFile).redirectError(errFile.toFile)
    val proc = pb.start()
    proc.getOutputStream.close()
    val out = try proc.getInputStream.readAllBytes() finally proc.getInputStream.close()
    val code = proc.waitFor()
    val err = new String(Files.readAllBytes(errFile), StandardCharsets.UTF_8).trim
    if (code != 0) {
      val msg = err.stripPrefix("goexec prepare: ").trim
      throw new GoCaffeException(s"cannot load solver $solverPath: " +
        (if (msg.nonEmpty) msg else s"goexec prepare exited with status $code"))
    }
    if (err.nonEmpty) err.split("\n").foreach(l => log.warn(s"$solverPath: $l"))
    out
  }

  /** goexec's account of why bytes read from path do not decode as a
    * `kind` ("solverstate" or "caffemodel"): the file, the byte offset and
    * the field. None where the jar's goexec cannot run here or says nothing.
    */
  def explainBroken(kind: String, path: String, bytes: Array[Byte]): Option[String] = {
    if (!canRunGoExec) return None
    val dir = Files.createTempDirectory("gocaffe-check-",
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
    try {
      val bin = dir.resolve("goexec")
      val in = getClass.getClassLoader.getResourceAsStream(GoExec.BinaryResource)
      try Files.copy(in, bin, StandardCopyOption.REPLACE_EXISTING) finally in.close()
      Files.setPosixFilePermissions(bin, PosixFilePermissions.fromString("rwx------"))
      val f = dir.resolve("file")
      Files.write(f, bytes)
      try { runPrepare(bin, dir, path, Seq(s"-check-$kind", f.toString, "-file-name", path)); None }
      catch { case e: GoCaffeException => Some(e.getMessage.stripPrefix(s"cannot load solver $path: ")) }
    } finally GoExec.deleteTree(dir)
  }

  /** Parses the solver and its nets with goexec (Caffe's V0/V1/input
    * upgrades, the same errors as goexec train): the files are read here,
    * through Hadoop, and goexec gets their texts.
    */
  private def prepareWithGoExec(solverPath: String, solverText: String, hadoop: Configuration): SolverParameter = {
    val dir = Files.createTempDirectory("gocaffe-prepare-",
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
    try {
      val bin = dir.resolve("goexec")
      val in = getClass.getClassLoader.getResourceAsStream(GoExec.BinaryResource)
      try Files.copy(in, bin, StandardCopyOption.REPLACE_EXISTING) finally in.close()
      Files.setPosixFilePermissions(bin, PosixFilePermissions.fromString("rwx------"))
      val solverFile = dir.resolve("solver.prototxt")
      Files.write(solverFile, solverText.getBytes(StandardCharsets.UTF_8))
      val solverArgs = Seq("-solver", solverFile.toString, "-solver-name", solverPath)
      val nets = new String(runPrepare(bin, dir, solverPath, solverArgs :+ "-list-nets"), StandardCharsets.UTF_8)
        .split("\n").map(_.trim).filter(_.nonEmpty).toSeq
      val netArgs = nets.zipWithIndex.flatMap { case (written, i) =>
        val p = resolveBeside(solverPath, written)
        val f = dir.resolve(s"net$i.prototxt")
        Files.write(f, readBytes(p, hadoop))
        Seq("-net", s"$written\t$f\t$p")
      }
      SolverParameter.parseFrom(runPrepare(bin, dir, solverPath, solverArgs ++ netArgs))
    } finally GoExec.deleteTree(dir)
  }

  /** Parses the solver and its nets with protobuf-java's TextFormat: no
    * legacy upgrades. Only where the jar's goexec cannot run (not linux/amd64).
    */
  private def prepareWithTextFormat(solverPath: String, solverText: String, hadoop: Configuration): SolverParameter = {
    val sb = parseText(solverPath, solverText, SolverParameter.newBuilder())
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
    sb.build()
  }

  /** Loads the solver and its nets (train net and test nets inlined, legacy
    * nets upgraded), and finds the data layers that read from Spark.
    * training = false (test and features on DataFrames) skips the rules
    * only training needs (max_iter, the train net's data layer).
    */
  def loadSolver(path: String, hadoop: Configuration, training: Boolean = true): SolverSpec = {
    val solverPath = SubmittedFiles.solverPath(path)
    val text = readText(solverPath, hadoop)
    val solver =
      if (canRunGoExec) prepareWithGoExec(solverPath, text, hadoop)
      else {
        log.warn(s"$solverPath: goexec cannot run on this driver (${System.getProperty("os.name")}/" +
          s"${System.getProperty("os.arch")}); parsing without Caffe's legacy-format upgrades")
        prepareWithTextFormat(solverPath, text, hadoop)
      }
    if (!solver.hasNetParam && !solver.hasTrainNetParam)
      throw new GoCaffeException(s"$solverPath: the solver names no net (net, net_param, train_net or train_net_param)")
    if (training && solver.getMaxIter <= 0) throw new GoCaffeException(s"$solverPath: max_iter must be positive")
    specOf(solverPath, solver, training)
  }

  /** The spec of a solver whose nets are inlined: its data layers found. */
  def specOf(solverPath: String, solver: SolverParameter, training: Boolean = true): SolverSpec = {
    val train = if (solver.hasTrainNetParam) solver.getTrainNetParam else solver.getNetParam
    val trainData = dataLayers(train, Phase.TRAIN)
    if (training && trainData.isEmpty)
      throw new GoCaffeException(s"$solverPath: the train net has no data layer with a source " +
        "(MemoryData memory_data_param.source, CoSData cos_data_param.source, Data data_param.source " +
        "or HDF5Data hdf5_data_param.source)")
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
  private[train] def inPhase(l: LayerParameter, phase: Phase): Boolean = {
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
        case "HDF5Data" if l.getHdf5DataParam.hasSource => // rewritten by CaffeDataLayers
          Some(DataLayer(phase, l, l.getHdf5DataParam.getSource, "", l.getHdf5DataParam.getBatchSize))
        case _ => None
      }
    }
}

/** A problem GoCaffe explains to the user (no stack trace needed). */
final class GoCaffeException(message: String, cause: Throwable = null) extends RuntimeException(message, cause)
