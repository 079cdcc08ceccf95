import java.io.PrintStream
import java.util.Properties

import com.gocaffe.shim.{CaffeOptionParser, CaffeOptions, GoCaffeConf, GoCaffeConfException, GoCaffePlugin, ParseResult, SelfTest}
import scala.util.control.NonFatal

import com.gocaffe.goexec.v1.ErrorCode
import com.gocaffe.shim.GoExecError
import com.gocaffe.train.{DistributedTrainer, FeatureExtraction, GoCaffeException, OutputDestinations, RoundRunner, YarnSettings}
import org.apache.spark.{SparkConf, SparkContext, SparkException}

/** GoCaffe's main class: `spark-submit --class GoCaffeRunner gocaffe.jar ...`
  * with CaffeOnSpark's command line. It has no package so that the class name
  * is the same short one CaffeOnSpark users replace theirs with.
  */
object GoCaffeRunner {

  /** Exit status for command-line problems. */
  val ExitUsage = 2
  /** Exit status for options GoCaffe accepts but cannot run yet. */
  val ExitNotImplemented = 3

  def main(args: Array[String]): Unit = {
    val status = run(args.toSeq, System.out, System.err)
    System.out.flush()
    System.err.flush()
    if (status != 0) sys.exit(status)
  }

  /** GoCaffe's version and what it was built against, from the jar. */
  def buildInfo: Properties = {
    val p = new Properties()
    val in = getClass.getClassLoader.getResourceAsStream("gocaffe/version.properties")
    if (in != null) try p.load(in) finally in.close()
    p
  }

  def versionLine: String = {
    val p = buildInfo
    s"GoCaffe ${p.getProperty("version", "unknown")} (goexec ${p.getProperty("version", "unknown")} linux/amd64; " +
      s"built against Spark ${p.getProperty("spark", "?")}, Scala ${p.getProperty("scala", "?")})"
  }

  /** Parses args and runs the requested mode; returns the exit status. */
  def run(args: Seq[String], out: PrintStream, err: PrintStream): Int =
    CaffeOptionParser(args) match {
      case ParseResult.Help() =>
        out.print(CaffeOptionParser.usage())
        0
      case ParseResult.Version() =>
        out.println(versionLine)
        0
      case ParseResult.Invalid(problems) =>
        err.println(s"GoCaffeRunner: ${problems.size} problem${if (problems.size == 1) "" else "s"} with the command line:")
        problems.foreach(p => err.println(s"  - $p"))
        err.println("Run with --help to list the options.")
        ExitUsage
      case ParseResult.Ok(opts) if CaffeOptionParser.dataFrameOnly.exists(opts.has) =>
        err.println(s"GoCaffeRunner: ${CaffeOptionParser.dataFrameOnly.filter(opts.has).map("-" + _).mkString(", ")} " +
          "name DataFrame columns: they are options of com.gocaffe.GoCaffe.test/features (Python: gocaffe.test/features), " +
          "which also run deploy nets")
        ExitUsage
      case ParseResult.Ok(opts) =>
        val missing = CaffeOptionParser.unimplemented(opts)
        if (!opts.isSelfTest && missing.nonEmpty) {
          val mode = CaffeOptionParser.modeNames.filter(opts.has).map("-" + _).mkString(" ")
          err.println(s"GoCaffeRunner: $mode: not implemented yet in ${versionLine}: ${missing.mkString(" ")}. " +
            "This build runs -train, -test, -features and --selftest.")
          ExitNotImplemented
        } else runWithSpark(opts, out, err)
    }

  /** Spark settings GoCaffe needs: its plugin on every executor. */
  def sparkConf(opts: CaffeOptions): SparkConf = {
    val conf = new SparkConf()
    conf.setIfMissing("spark.app.name", "GoCaffe")
    val plugins = conf.get("spark.plugins", "").split(",").map(_.trim).filter(_.nonEmpty)
    if (!plugins.contains(GoCaffePlugin.ClassName))
      conf.set("spark.plugins", (plugins :+ GoCaffePlugin.ClassName).mkString(","))
    GoCaffeConf.resolve(conf) // every spark.gocaffe.* problem, before Spark starts
    if (opts.isTrain || opts.isTest || opts.isFeatures) DistributedTrainer.configure(conf)
    YarnSettings.configure(conf).foreach(System.out.println)
    conf
  }

  private def runWithSpark(opts: CaffeOptions, out: PrintStream, err: PrintStream): Int = {
    val conf =
      try sparkConf(opts)
      catch {
        case e: GoCaffeConfException =>
          err.println(s"GoCaffeRunner: ${e.getMessage}")
          return ExitUsage
      }
    val sc = new SparkContext(conf)
    val failure: Option[String] = try {
      if (opts.has("devices") && opts.devices > 0)
        out.println(s"GoCaffe: -devices ${opts.devices}: distributed training computes on the executors' CPU cores in this version; executors granted a GPU (spark.executor.resource.gpu.amount) log whether goexec-cuda can use it")
      val status = if (opts.isTrain || opts.isTest || opts.isFeatures) {
        if (opts.isFeatures) FeatureExtraction.preflight(opts, sc.hadoopConfiguration) // before any training
        OutputDestinations.preflight(opts, sc.hadoopConfiguration) // every destination, before any work
        val trainer = new DistributedTrainer(sc, opts, out, err)
        val status = if (opts.isTrain) trainer.train() else if (opts.isTest) trainer.test() else 0
        if (status == 0 && opts.isFeatures) new FeatureExtraction(sc, opts, trainer, out).run() else status
      } else {
        val waitMs = GoCaffeConf.resolve(sc.getConf).millis("spark.gocaffe.barrier.slotWaitTimeout")
        SelfTest.run(sc, opts.int("clusterSize"), opts.has("selftest-kill-goexec"), waitMs, out, err)
      }
      if (status == 0) None else Some("")
    } catch {
      case e: GoCaffeException => Some(e.getMessage)
      case e: SparkException   => Some(GoExecError.find(e) match {
        case Some(c) if c.code == ErrorCode.BAD_INPUT => s"${c.where} refused its input: ${c.description}"
        case _                                        => s"the Spark job failed: ${RoundRunner.cause(e)}"
      })
      case NonFatal(e) =>
        e.printStackTrace(err)
        Some(s"GoCaffe failed: $e")
    }
    // A failed run's last line is GoCaffe's sentence of the cause, whatever
    // Spark printed before it: Spark stops quietly, then the sentence.
    failure.filter(_.nonEmpty).foreach(_ => sc.setLogLevel("ERROR"))
    sc.stop()
    failure match {
      case None     => 0
      case Some("") => 1
      case Some(m)  => err.println(s"GoCaffeRunner: $m"); err.flush(); 1
    }
  }
}
