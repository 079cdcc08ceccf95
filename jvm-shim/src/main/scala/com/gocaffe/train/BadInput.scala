package com.gocaffe.train

/** Finds goexec's refusal of its input (gRPC INVALID_ARGUMENT: a bad label
  * naming the column, row, sample id and value; a partition that does not
  * fit the data layer) inside a failed Spark job, so that the driver says it
  * in one line instead of Spark's barrier-stage text and a stack trace.
  */
object BadInput {
  // GoExec's call failure: "goexec on executor E (host H): Status{code=INVALID_ARGUMENT, description=D, cause=...}".
  private val Refusal = """goexec on executor (\S+) \(host (\S+)\): Status\{code=INVALID_ARGUMENT, description=(.*), cause=""".r.unanchored

  /** The refusal in e's message or its causes, as "goexec on executor E
    * (host H) refused its input: D".
    */
  def unapply(e: Throwable): Option[String] =
    Iterator.iterate(e)(_.getCause).takeWhile(_ != null).take(16)
      .flatMap(t => Option(t.getMessage).iterator.flatMap(_.linesIterator))
      .collectFirst { case Refusal(executor, host, why) => s"goexec on executor $executor (host $host) refused its input: $why" }
}
