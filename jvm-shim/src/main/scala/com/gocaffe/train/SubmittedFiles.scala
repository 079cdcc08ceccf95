package com.gocaffe.train

import java.io.File

import org.apache.hadoop.fs.Path

/** Where the solver given with -conf is read from. CaffeOnSpark read it
  * from the driver's local disk, and its YARN instructions ship the solver
  * and net with `--files` and name them relatively (`-conf
  * lenet_solver.prototxt`): in cluster mode YARN puts them in the driver's
  * working directory. A -conf path without a scheme that names a local file
  * is therefore read from there (its net beside it); any other path goes
  * through Hadoop's file systems (fs.defaultFS for a path without a scheme,
  * e.g. HDFS on YARN).
  */
object SubmittedFiles {
  def solverPath(path: String): String = {
    if (new Path(path).toUri.getScheme != null) return path
    val f = new File(path)
    if (f.isFile) f.getAbsoluteFile.toURI.toString else path
  }
}
