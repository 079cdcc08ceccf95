package com.gocaffe.train

import java.io.OutputStream
import java.util.UUID

import scala.util.control.NonFatal

import caffe.Caffe.SolverState
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FileSystem, Path}

/** Writes .caffemodel and .solverstate files through Hadoop's file systems,
  * atomically: a temporary file beside the target, then a rename.
  */
final class Snapshots(modelPath: String, prefixName: String, hadoop: Configuration) {
  private val model = new Path(modelPath)
  private val dir = Option(model.getParent).getOrElse(new Path("."))

  /** Writes bytes to path atomically (temp + rename, replacing any old file). */
  def writeAtomically(path: Path, bytes: Array[Byte]): Unit = writeAllAtomically(Seq(path -> ((o: OutputStream) => o.write(bytes))))

  /** Writes files that belong together (a .caffemodel and its .solverstate):
    * every file goes to a temporary file beside its target first, and only
    * when all are complete are they renamed into place. On any failure the
    * temporary files (with their .crc) are removed, and so are the files this
    * call already renamed: none of the group is left without the others. A
    * file being replaced is moved aside, not deleted, until the whole group
    * is in place, and put back on a failure: an earlier snapshot at the same
    * path is never lost to a failed write.
    */
  def writeAllAtomically(files: Seq[(Path, OutputStream => Unit)]): Unit = {
    val tmps = scala.collection.mutable.ArrayBuffer.empty[(FileSystem, Path)]
    val renamed = scala.collection.mutable.ArrayBuffer.empty[(FileSystem, Path)]
    val replaced = scala.collection.mutable.ArrayBuffer.empty[(FileSystem, Path, Path)] // (fs, path, moved-aside copy)
    def quietly(f: => Any): Unit = try f catch { case NonFatal(_) => }
    try {
      for ((path, write) <- files) {
        val fs = path.getFileSystem(hadoop)
        if (path.getParent != null) fs.mkdirs(path.getParent)
        val tmp = new Path(path.getParent, s".${path.getName}.tmp-${UUID.randomUUID()}")
        tmps += fs -> tmp
        val out = fs.create(tmp, true)
        try {
          write(out)
          out.hsync()
        } finally out.close() // a full disk may fail here too
      }
      for (((path, _), (fs, tmp)) <- files.zip(tmps.toSeq)) {
        if (fs.exists(path)) {
          val aside = new Path(path.getParent, s".${path.getName}.old-${UUID.randomUUID()}")
          if (!fs.rename(path, aside)) throw new GoCaffeException(s"could not move $path aside to $aside")
          replaced += ((fs, path, aside))
        }
        if (!fs.rename(tmp, path)) throw new GoCaffeException(s"could not rename $tmp to $path")
        renamed += fs -> path
      }
      tmps.clear()
      for ((fs, _, aside) <- replaced) quietly(fs.delete(aside, false))
    } catch {
      case NonFatal(e) =>
        for ((fs, t) <- tmps) quietly(fs.delete(t, false))
        for ((fs, p) <- renamed) quietly(fs.delete(p, false))
        for ((fs, p, aside) <- replaced) quietly(fs.rename(aside, p))
        throw e
    }
  }

  /** The .solverstate beside a .caffemodel path. */
  def statePathFor(m: Path): Path = {
    val n = m.getName
    val base = if (n.endsWith(".caffemodel")) n.stripSuffix(".caffemodel") else n
    new Path(m.getParent, base + ".solverstate")
  }

  private def writePair(m: Path, model: Model): (Path, Path) = {
    val st = statePathFor(m)
    writeAllAtomically(Seq(
      m -> ((o: OutputStream) => model.weights.foreach(w => java.nio.file.Files.copy(w.file, o))),
      st -> ((o: OutputStream) => Snapshots.writeState(model, Some(m.toString), o))))
    (m, st)
  }

  /** Caffe's periodic snapshot: DIR/PREFIX_iter_N.caffemodel and .solverstate. */
  def periodic(model: Model): (Path, Path) =
    writePair(new Path(dir, s"${prefixName}_iter_${model.iter}.caffemodel"), model)

  /** The final model at -model's path, with its .solverstate beside it.
    * When that fails (a full disk, a lost permission), the pair is saved to
    * a local directory instead and the error names it: a trained model is
    * never lost.
    */
  def finalModel(model: Model): (Path, Path) =
    try writePair(this.model, model)
    catch {
      case NonFatal(e) =>
        val why = Option(e.getMessage).flatMap(_.linesIterator.toSeq.headOption).getOrElse(e.toString)
        val local = Snapshots.fallback(this.model.getName, model)
        throw new GoCaffeException(s"could not write the model to ${this.model}: $why; the trained weights are saved " +
          s"in ${local._1} (solver state ${local._2})", e)
    }
}

object Snapshots {
  /** The model's .solverstate bytes to out, with learned_net set (or left
    * out), streamed from the state's file: its history is as large as the
    * weights. Without a state (no round ran), a state at the model's
    * iteration.
    */
  private[train] def writeState(model: Model, learnedNet: Option[String], out: OutputStream): Unit =
    model.state match {
      case Some(s) => ProtoFields.rewrite(s.file, out, SolverState.LEARNED_NET_FIELD_NUMBER, learnedNet)
      case None =>
        val b = SolverState.newBuilder().setIter(model.iter.toInt)
        learnedNet.foreach(b.setLearnedNet)
        b.build().writeTo(out)
    }

  /** Writes a model pair to a new local directory (under java.io.tmpdir, or
    * GOCAFFE_FALLBACK_DIR when set) and returns both paths.
    */
  private[train] def fallback(name: String, model: Model): (java.nio.file.Path, java.nio.file.Path) = {
    val root = sys.env.get("GOCAFFE_FALLBACK_DIR").map(java.nio.file.Paths.get(_))
      .getOrElse(java.nio.file.Paths.get(System.getProperty("java.io.tmpdir")))
    java.nio.file.Files.createDirectories(root)
    val dir = java.nio.file.Files.createTempDirectory(root, "gocaffe-model-")
    val base = if (name.endsWith(".caffemodel")) name.stripSuffix(".caffemodel") else name
    val m = dir.resolve(base + ".caffemodel")
    val s = dir.resolve(base + ".solverstate")
    model.weights match {
      case Some(w) => java.nio.file.Files.copy(w.file, m)
      case None    => java.nio.file.Files.write(m, Array.emptyByteArray)
    }
    val out = java.nio.file.Files.newOutputStream(s)
    try writeState(model, None, out) finally out.close()
    (m, s)
  }

  /** Reads -snapshot S.solverstate and the weights it names (learned_net,
    * found as written or beside the state file). Returns (weights, state).
    */
  def resume(statePath: String, hadoop: Configuration): (Array[Byte], Array[Byte], SolverState) = {
    val bytes = CaffeFiles.readBytes(statePath, hadoop)
    val st = try SolverState.parseFrom(bytes) catch {
      case e: com.google.protobuf.InvalidProtocolBufferException =>
        // protobuf-java says only "truncated"; goexec names the byte offset and field.
        throw new GoCaffeException(s"-snapshot ${CaffeFiles.explainBroken("solverstate", statePath, bytes)
          .getOrElse(s"$statePath: ${e.getMessage}")}", e)
    }
    if (st.getLearnedNet.isEmpty)
      throw new GoCaffeException(s"-snapshot $statePath: the solver state names no learned_net (.caffemodel)")
    val candidates = Seq(st.getLearnedNet, CaffeFiles.resolveBeside(statePath, new Path(st.getLearnedNet).getName))
    val found = candidates.find { c => val p = new Path(c); p.getFileSystem(hadoop).exists(p) }.getOrElse(
      throw new GoCaffeException(s"-snapshot $statePath: its weights ${st.getLearnedNet} are missing " +
        s"(looked at ${candidates.distinct.mkString(" and ")})"))
    (CaffeFiles.readBytes(found, hadoop), bytes, st)
  }
}
