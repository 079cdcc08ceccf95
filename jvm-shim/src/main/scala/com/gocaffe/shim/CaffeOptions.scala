package com.gocaffe.shim

import scala.collection.mutable

/** One command-line option: CaffeOnSpark's single-dash spelling (`-conf`),
  * also accepted with two dashes (`--conf`) and as `-name=value`.
  *
  * @param name        the option's name without dashes
  * @param takesValue  whether a value follows it
  * @param help        one line for `--help`
  * @param implemented false while GoCaffe accepts the option but cannot act on it yet
  * @param check       validates the value; returns a problem description or None
  */
final case class OptionSpec(
    name: String,
    takesValue: Boolean,
    help: String,
    implemented: Boolean = true,
    metavar: String = "VALUE",
    check: String => Option[String] = _ => None)

/** Parsed options: flags given and values by option name. */
final case class CaffeOptions(flags: Set[String], values: Map[String, String]) {
  def has(name: String): Boolean = flags.contains(name) || values.contains(name)
  def get(name: String): Option[String] = values.get(name)
  def int(name: String): Option[Int] = values.get(name).map(_.trim.toInt)

  def isTrain: Boolean = has("train")
  def isTest: Boolean = has("test")
  def isFeatures: Boolean = has("features")
  def isSelfTest: Boolean = has("selftest")
  /** -devices: GPUs per executor, CaffeOnSpark's default 1. */
  def devices: Int = int("devices").getOrElse(1)
  def outputFormat: String = get("outputFormat").getOrElse("json")
  def features: Seq[String] = get("features").toSeq.flatMap(_.split(",").map(_.trim).filter(_.nonEmpty))
}

/** Result of parsing: the options, or every problem found. */
sealed trait ParseResult
object ParseResult {
  final case class Ok(options: CaffeOptions) extends ParseResult
  final case class Help() extends ParseResult
  final case class Version() extends ParseResult
  final case class Invalid(problems: Seq[String]) extends ParseResult
}

/** GoCaffeRunner's command line: CaffeOnSpark's options plus GoCaffe's own.
  *
  * Other parts of the shim extend it by passing extra specs and extra
  * cross-option rules to [[CaffeOptionParser.apply]] (e.g. distributed
  * training adds its sync-mode options).
  */
object CaffeOptionParser {

  private def intAtLeast(min: Int)(name: String)(v: String): Option[String] =
    v.trim.toIntOption match {
      case Some(n) if n >= min => None
      case Some(n)             => Some(s"-$name $n: must be at least $min")
      case None                => Some(s"-$name '$v': not an integer")
    }

  private def oneOf(allowed: String*)(name: String)(v: String): Option[String] =
    if (allowed.contains(v.toLowerCase)) None
    else Some(s"-$name '$v': must be one of ${allowed.mkString(", ")}")

  private def nonEmpty(name: String)(v: String): Option[String] =
    if (v.trim.nonEmpty) None else Some(s"-$name: empty value")

  /** CaffeOnSpark's options (caffe-grid Config.scala), in its order. */
  val caffeOnSparkSpecs: Seq[OptionSpec] = Seq(
    OptionSpec("conf", takesValue = true, "solver configuration (.prototxt)", metavar = "FILE", check = nonEmpty("conf")),
    OptionSpec("train", takesValue = false, "training mode"),
    OptionSpec("test", takesValue = false, "test mode"),
    OptionSpec("features", takesValue = true, "extract these test-net blobs per sample (comma separated) to -output",
      metavar = "BLOBS", check = nonEmpty("features")),
    OptionSpec("label", takesValue = true, "name of the label blob included in features",
      metavar = "BLOB", check = nonEmpty("label")),
    OptionSpec("outputFormat", takesValue = true, "feature output format: json (default) or parquet",
      metavar = "FORMAT", check = oneOf("json", "parquet")("outputFormat")),
    OptionSpec("model", takesValue = true, "model path (.caffemodel)", metavar = "PATH",
      check = nonEmpty("model")),
    OptionSpec("output", takesValue = true, "-features: output directory (default: output); -test: result file",
      metavar = "PATH", check = nonEmpty("output")),
    OptionSpec("devices", takesValue = true, "number of local GPUs per executor (default 1; this build: CPU only)",
      metavar = "N", check = intAtLeast(0)("devices")),
    OptionSpec("persistent", takesValue = false,
      "keep each rank's data partition on its executor's local disk (reloaded from there, not the source)"),
    OptionSpec("snapshot", takesValue = true, "solver state (.solverstate) to resume from", metavar = "FILE", check = nonEmpty("snapshot")),
    OptionSpec("weights", takesValue = true, "model weights (.caffemodel) to start from", metavar = "FILE", check = nonEmpty("weights")),
    OptionSpec("connection", takesValue = true, "ethernet or infiniband (both use TCP in GoCaffe)",
      metavar = "KIND", check = oneOf("ethernet", "infiniband")("connection")),
    OptionSpec("resize", takesValue = false,
      "resize images whose size differs from the data layer's height and width (bilinear) instead of refusing them"),
    OptionSpec("clusterSize", takesValue = true, "number of executors taking part", metavar = "N",
      check = intAtLeast(1)("clusterSize")),
    OptionSpec("lmdb_partitions", takesValue = true, "number of LMDB RDD partitions (default: cluster size)",
      metavar = "N", check = intAtLeast(1)("lmdb_partitions")),
    OptionSpec("imageRoot", takesValue = true, "image files' root (dev)", implemented = false, metavar = "DIR"),
    OptionSpec("labelFile", takesValue = true, "label file (dev)", implemented = false, metavar = "FILE"),
    OptionSpec("captionFile", takesValue = true, "caption file path (dev)", implemented = false, metavar = "FILE"),
    OptionSpec("captionLength", takesValue = true, "caption vector length (dev)", implemented = false,
      metavar = "N", check = intAtLeast(1)("captionLength")),
    OptionSpec("vocabSize", takesValue = true, "vocabulary size (dev)", implemented = false, metavar = "N",
      check = intAtLeast(-1)("vocabSize")),
    OptionSpec("imageCaptionDFDir", takesValue = true, "output image caption DataFrame directory (dev)",
      implemented = false, metavar = "DIR"),
    OptionSpec("vocabDir", takesValue = true, "output vocabulary directory (dev)", implemented = false,
      metavar = "DIR"),
    OptionSpec("embeddingDFDir", takesValue = true, "output embedded DataFrame directory (dev)",
      implemented = false, metavar = "DIR")
  )

  /** GoCaffe's own options. */
  val goCaffeSpecs: Seq[OptionSpec] = Seq(
    OptionSpec("selftest", takesValue = false,
      "start goexec on every executor and print its version and devices, one line per executor"),
    OptionSpec("selftest-kill-goexec", takesValue = false,
      "test hook: run --selftest, SIGKILL every goexec, then show the error the next task gets"),
    OptionSpec("overwrite", takesValue = false,
      "-train: replace an existing -model and its .solverstate (without it, an existing model is an error before any work)"),
    OptionSpec("dataColumn", takesValue = true,
      "GoCaffe.test/features: the DataFrame column fed as the data (a MemoryData layer's data, a deploy net's input; default data)",
      metavar = "COLUMN", check = nonEmpty("dataColumn")),
    OptionSpec("labelColumn", takesValue = true,
      "GoCaffe.test/features: the DataFrame column of labels (default label); a deploy net's -test scores against it",
      metavar = "COLUMN", check = nonEmpty("labelColumn")),
    OptionSpec("scoresBlob", takesValue = true,
      "GoCaffe.test of a deploy net: the blob whose argmax is compared with -labelColumn (default: the net's only output)",
      metavar = "BLOB", check = nonEmpty("scoresBlob")),
    OptionSpec("help", takesValue = false, "print this help"),
    OptionSpec("version", takesValue = false, "print the GoCaffe version")
  )

  /** A rule over several options: returns problems. */
  type Rule = CaffeOptions => Seq[String]

  val modeNames: Seq[String] = Seq("train", "test", "features", "selftest", "selftest-kill-goexec")

  /** CaffeOnSpark's cross-option requirements and GoCaffe's mode rules. */
  val defaultRules: Seq[Rule] = Seq(
    o => {
      val modes = modeNames.filter(o.has)
      val selftests = modes.filter(_.startsWith("selftest"))
      if (modes.isEmpty) Seq("nothing to do: give -train, -test, -features or --selftest")
      else if (selftests.nonEmpty && modes.size > 1)
        Seq(s"${modes.map("-" + _).mkString(", ")} cannot be combined: --selftest runs alone")
      else Nil
    },
    o =>
      if ((o.isTrain || o.isTest || o.isFeatures) && !o.has("conf"))
        Seq(s"${Seq("train", "test", "features").filter(o.has).map("-" + _).mkString(", ")} needs -conf")
      else Nil,
    o =>
      if ((o.isTest || o.isFeatures) && !o.isTrain && !o.has("model"))
        Seq("-test/-features without -train needs -model (the weights to use)")
      else Nil,
    o => Seq("snapshot", "weights").filter(o.has).filterNot(_ => o.isTrain).map(n => s"-$n needs -train"),
    o => if (o.has("label") && !o.isFeatures) Seq("-label needs -features") else Nil,
    o => if (o.has("outputFormat") && !o.isFeatures) Seq("-outputFormat needs -features") else Nil,
    o => if (o.has("output") && !o.isFeatures && !o.isTest) Seq("-output needs -features or -test") else Nil,
    o => Seq("dataColumn", "labelColumn").filter(o.has).filterNot(_ => o.isTest || o.isFeatures)
      .map(n => s"-$n needs -test or -features"),
    o => if (o.has("scoresBlob") && !o.isTest) Seq("-scoresBlob needs -test") else Nil,
    o => if (o.isTest && o.isFeatures) Seq("-test and -features cannot be combined: run one, then the other") else Nil,
    o =>
      if (o.has("snapshot") && o.has("weights"))
        Seq("-snapshot and -weights are contradictory: resume from a solver state or start from weights, not both")
      else Nil
  )

  /** The full spec list. */
  val defaultSpecs: Seq[OptionSpec] = caffeOnSparkSpecs ++ goCaffeSpecs

  /** Parses args, reporting every problem at once. */
  def apply(args: Seq[String], specs: Seq[OptionSpec] = defaultSpecs,
            rules: Seq[Rule] = defaultRules): ParseResult = {
    val byName = specs.map(s => s.name.toLowerCase -> s).toMap
    val problems = mutable.ArrayBuffer.empty[String]
    val flags = mutable.LinkedHashSet.empty[String]
    val values = mutable.LinkedHashMap.empty[String, String]
    val seen = mutable.HashSet.empty[String]
    var i = 0
    while (i < args.length) {
      val arg = args(i)
      i += 1
      if (arg == "-h") flags += "help"
      else if (!arg.startsWith("-") || arg == "-" || arg == "--") problems += s"unexpected argument '$arg'"
      else {
        val body = arg.dropWhile(_ == '-')
        val (key, inline) = body.indexOf('=') match {
          case -1 => (body, None)
          case k  => (body.substring(0, k), Some(body.substring(k + 1)))
        }
        byName.get(key.toLowerCase) match {
          case None =>
            val near = specs.map(_.name).filter(n => n.toLowerCase.startsWith(key.toLowerCase.take(3)) && key.length >= 3)
            val hint = if (near.nonEmpty) s" (did you mean ${near.map("-" + _).mkString(" or ")}?)" else ""
            problems += s"unknown option '$arg'$hint"
          case Some(spec) =>
            if (!seen.add(spec.name)) problems += s"-${spec.name} given more than once"
            if (spec.takesValue) {
              val value = inline.orElse {
                if (i < args.length && !(args(i).startsWith("-") && args(i).length > 1 && !args(i).drop(1).head.isDigit)) {
                  i += 1; Some(args(i - 1))
                } else None
              }
              value match {
                case None    => problems += s"-${spec.name} needs a value (${spec.metavar})"
                case Some(v) =>
                  spec.check(v).foreach(problems += _)
                  values(spec.name) = v
              }
            } else if (inline.isDefined) problems += s"-${spec.name} takes no value"
            else flags += spec.name
        }
      }
    }
    if (flags.contains("help")) return ParseResult.Help()
    if (flags.contains("version")) return ParseResult.Version()
    val opts = CaffeOptions(flags.toSet, values.toMap)
    if (problems.isEmpty) rules.foreach(r => problems ++= r(opts))
    if (problems.nonEmpty) ParseResult.Invalid(problems.toSeq) else ParseResult.Ok(opts)
  }

  /** The options only GoCaffe.test and GoCaffe.features take (they name DataFrame columns). */
  val dataFrameOnly: Seq[String] = Seq("dataColumn", "labelColumn", "scoresBlob")

  /** The options given that GoCaffe cannot act on yet. */
  def unimplemented(opts: CaffeOptions, specs: Seq[OptionSpec] = defaultSpecs): Seq[String] =
    specs.filter(s => !s.implemented && opts.has(s.name)).map("-" + _.name)

  /** The `--help` text. */
  def usage(specs: Seq[OptionSpec] = defaultSpecs): String = {
    val sb = new StringBuilder
    sb ++= "usage: spark-submit --class GoCaffeRunner gocaffe.jar [options]\n\n"
    sb ++= "GoCaffe runs Caffe models on Spark with CaffeOnSpark's command line.\n\n"
    def section(title: String, ss: Seq[OptionSpec]): Unit = {
      sb ++= title + "\n"
      ss.foreach { s =>
        val left = if (s.takesValue) s"-${s.name} ${s.metavar}" else s"-${s.name}"
        val note = if (s.implemented) "" else "  [not implemented yet]"
        sb ++= f"  $left%-28s ${s.help}$note\n"
      }
      sb ++= "\n"
    }
    section("CaffeOnSpark options:", specs.filter(s => caffeOnSparkSpecs.exists(_.name == s.name)))
    section("GoCaffe options:", specs.filterNot(s => caffeOnSparkSpecs.exists(_.name == s.name)))
    sb ++= "Options take one or two dashes; values follow as the next argument or after '='.\n"
    sb ++= "Bad options are all reported together, and the exit status is 2.\n"
    sb.toString
  }
}
