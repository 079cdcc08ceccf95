package com.gocaffe.train

import java.util.UUID

import scala.util.control.NonFatal

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FileSystem, Path}

import com.gocaffe.shim.CaffeOptions

/** Checks, before any work, every place a run will write to, on whatever
  * Hadoop file system it is: the directory exists or can be created, and a
  * file can be created in it (a probe file, removed at once); `-model` (and
  * the .solverstate beside it) must not exist unless `-overwrite` is given.
  * Every problem is reported in one message. Periodic snapshots go beside
  * `-model` (see [[Snapshots]]), so the model's directory covers them.
  */
object OutputDestinations {

  /** The -train model path: -model, else the solver's snapshot_prefix; the
    * one rule for the preflight check and the final write.
    */
  def modelPath(opts: CaffeOptions, spec: SolverSpec): String = opts.get("model").getOrElse {
    val prefix = if (spec.snapshotPrefix.nonEmpty) spec.snapshotPrefix else "gocaffe"
    prefix + ".caffemodel"
  }

  /** Checks -train's model and snapshot destination and -test's -output;
    * throws a [[GoCaffeException]] naming every problem.
    */
  def preflight(opts: CaffeOptions, hadoop: Configuration): Unit = {
    val problems = Seq.newBuilder[String]
    if (opts.isTrain) {
      val spec = CaffeFiles.loadSolver(opts.get("conf").get, hadoop)
      val model = new Path(modelPath(opts, spec))
      val what = if (opts.has("model")) "-model" else "the model (snapshot_prefix + .caffemodel)"
      problems ++= checkFile(what, model, opts.has("overwrite"), hadoop)
      problems ++= checkFile(what + "'s solver state", new Snapshots(model.toString, "", hadoop).statePathFor(model),
        opts.has("overwrite"), hadoop)
      problems ++= checkDir(what, parentOf(model), hadoop)
    }
    if (opts.isTest && !opts.isFeatures) opts.get("output").foreach { o =>
      val p = new Path(o)
      problems ++= checkDir("-output", parentOf(p), hadoop)
    }
    val all = problems.result().distinct
    if (all.nonEmpty) throw new GoCaffeException(all.mkString("; "))
  }

  private def parentOf(p: Path): Path = Option(p.getParent).getOrElse(new Path("."))

  private def qualified(fs: FileSystem, p: Path): String =
    try fs.makeQualified(p).toString catch { case NonFatal(_) => p.toString }

  /** A file the run will write: it must not exist unless overwrite. */
  private[train] def checkFile(what: String, p: Path, overwrite: Boolean, hadoop: Configuration): Option[String] =
    try {
      val fs = p.getFileSystem(hadoop)
      if (!fs.exists(p)) None
      else if (fs.getFileStatus(p).isDirectory) Some(s"$what ${qualified(fs, p)} is a directory")
      else if (overwrite) None
      else Some(s"$what ${qualified(fs, p)} exists; give -overwrite to replace it, or another path")
    } catch {
      case NonFatal(e) => Some(s"$what $p: ${e.getMessage}")
    }

  /** A directory the run will write into: it exists or can be created, and
    * a file can be created and removed in it.
    */
  private[train] def checkDir(what: String, dir: Path, hadoop: Configuration): Option[String] =
    try {
      val fs = dir.getFileSystem(hadoop)
      val where = qualified(fs, dir)
      if (fs.exists(dir) && !fs.getFileStatus(dir).isDirectory)
        return Some(s"$what: $where is not a directory")
      if (!fs.exists(dir) && !fs.mkdirs(dir))
        return Some(s"$what: cannot create the directory $where")
      val probe = new Path(dir, s".gocaffe-probe-${UUID.randomUUID()}")
      try {
        fs.create(probe, false).close()
        None
      } catch {
        case NonFatal(e) => Some(s"$what: cannot write in $where: ${firstLine(e)}")
      } finally {
        try fs.delete(probe, false) catch { case NonFatal(_) => }
      }
    } catch {
      case NonFatal(e) => Some(s"$what: $dir: ${firstLine(e)}")
    }

  private def firstLine(e: Throwable): String =
    Option(e.getMessage).flatMap(_.linesIterator.toSeq.headOption).getOrElse(e.toString)
}
