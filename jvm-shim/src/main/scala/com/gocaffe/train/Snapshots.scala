package com.gocaffe.train

import java.util.UUID

import caffe.Caffe.SolverState
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path

/** Writes .caffemodel and .solverstate files through Hadoop's file systems,
  * atomically: a temporary file beside the target, then a rename.
  */
final class Snapshots(modelPath: String, prefixName: String, hadoop: Configuration) {
  private val model = new Path(modelPath)
  private val dir = Option(model.getParent).getOrElse(new Path("."))

  /** Writes bytes to path atomically (temp + rename, replacing any old file). */
  def writeAtomically(path: Path, bytes: Array[Byte]): Unit = {
    val fs = path.getFileSystem(hadoop)
    if (path.getParent != null) fs.mkdirs(path.getParent)
    val tmp = new Path(path.getParent, s".${path.getName}.tmp-${UUID.randomUUID()}")
    val out = fs.create(tmp, true)
    try {
      out.write(bytes)
      out.hsync()
    } catch {
      case e: Throwable =>
        out.close(); fs.delete(tmp, false); throw e
    }
    out.close()
    if (fs.exists(path)) fs.delete(path, false)
    if (!fs.rename(tmp, path)) {
      fs.delete(tmp, false)
      throw new GoCaffeException(s"snapshot: could not rename $tmp to $path")
    }
  }

  /** The .solverstate beside a .caffemodel path. */
  def statePathFor(m: Path): Path = {
    val n = m.getName
    val base = if (n.endsWith(".caffemodel")) n.stripSuffix(".caffemodel") else n
    new Path(m.getParent, base + ".solverstate")
  }

  private def writePair(m: Path, weights: Array[Byte], state: Array[Byte]): (Path, Path) = {
    val st = statePathFor(m)
    writeAtomically(m, weights)
    val s = SolverState.parseFrom(state).toBuilder.setLearnedNet(m.toString).build()
    writeAtomically(st, s.toByteArray)
    (m, st)
  }

  /** Caffe's periodic snapshot: DIR/PREFIX_iter_N.caffemodel and .solverstate. */
  def periodic(iter: Long, weights: Array[Byte], state: Array[Byte]): (Path, Path) =
    writePair(new Path(dir, s"${prefixName}_iter_$iter.caffemodel"), weights, state)

  /** The final model at -model's path, with its .solverstate beside it. */
  def finalModel(weights: Array[Byte], state: Array[Byte]): (Path, Path) = writePair(model, weights, state)
}

object Snapshots {
  /** Reads -snapshot S.solverstate and the weights it names (learned_net,
    * found as written or beside the state file). Returns (weights, state).
    */
  def resume(statePath: String, hadoop: Configuration): (Array[Byte], Array[Byte], SolverState) = {
    val bytes = CaffeFiles.readBytes(statePath, hadoop)
    val st = SolverState.parseFrom(bytes)
    if (st.getLearnedNet.isEmpty)
      throw new GoCaffeException(s"-snapshot $statePath: the solver state names no learned_net (.caffemodel)")
    val candidates = Seq(st.getLearnedNet, CaffeFiles.resolveBeside(statePath, new Path(st.getLearnedNet).getName))
    val found = candidates.find { c => val p = new Path(c); p.getFileSystem(hadoop).exists(p) }.getOrElse(
      throw new GoCaffeException(s"-snapshot $statePath: its weights ${st.getLearnedNet} are missing " +
        s"(looked at ${candidates.distinct.mkString(" and ")})"))
    (CaffeFiles.readBytes(found, hadoop), bytes, st)
  }
}
