package com.gocaffe.shim

import java.net.{URLDecoder, URLEncoder}
import java.nio.charset.StandardCharsets

import scala.jdk.CollectionConverters._

import com.gocaffe.goexec.v1.{ErrorCode, ErrorDetail}
import io.grpc.{Status, StatusRuntimeException}
import io.grpc.protobuf.StatusProto

/** A goexec RPC that failed, with goexec's own classification
  * (trainer.proto's `ErrorCode` and `ErrorDetail`).
  *
  * Spark hands a task's failure to the driver as text, so the message starts
  * with a marker of GoCaffe's own, `[gocaffe:CODE iteration=N subject=S]`
  * (S URL-encoded, so it holds no blank), that [[GoExecError.find]] reads
  * back on the driver; the rest of the message is for people.
  *
  * @param code        goexec's code, or one derived from the gRPC status code
  *                    when goexec sent no detail (see [[GoExecError.codeOf]])
  * @param subject     what failed, where goexec named one thing (a row's
  *                    sample id, a blob, a layer, a path); "" otherwise
  * @param iteration   the training iteration it failed at, or -1
  * @param grpcCode    the gRPC status code of the call
  * @param detailed    whether goexec sent an ErrorDetail
  * @param description goexec's message
  */
final class GoExecCallException(
    val code: ErrorCode,
    val subject: String,
    val iteration: Long,
    val grpcCode: Status.Code,
    val detailed: Boolean,
    val executorId: String,
    val host: String,
    val description: String,
    cause: Throwable)
    extends RuntimeException(
      GoExecError.marker(code, iteration, subject) + s" goexec on executor $executorId (host $host): $description",
      cause)

/** GoCaffe's failure marker: written by executors, read by the driver. */
object GoExecError {

  /** A coded failure found in a driver-side exception. */
  final case class Coded(code: ErrorCode, iteration: Long, subject: String, executorId: String, host: String,
                         description: String) {
    /** goexec's message, naming the executor. */
    def where: String = s"goexec on executor $executorId (host $host)"

    /** Whether running the same round again can ever help. */
    def retryable: Boolean = GoExecError.retryable(code)
  }

  private val Marker = """\[gocaffe:([A-Z_]+) iteration=(-?\d+) subject=(\S*)\] goexec on executor (\S+) \(host (\S+)\): (.*)""".r.unanchored

  def marker(code: ErrorCode, iteration: Long, subject: String): String =
    s"[gocaffe:${code.name} iteration=$iteration subject=${URLEncoder.encode(subject, StandardCharsets.UTF_8)}]"

  /** BAD_INPUT, DIVERGED and OUT_OF_MEMORY fail the same way every time. */
  def retryable(code: ErrorCode): Boolean = code match {
    case ErrorCode.BAD_INPUT | ErrorCode.DIVERGED | ErrorCode.OUT_OF_MEMORY => false
    case _                                                                  => true
  }

  /** The code of a status without an ErrorDetail, by gRPC code only:
    * INVALID_ARGUMENT is goexec's refusal of its input; the rest is INTERNAL.
    */
  def codeOf(code: Status.Code): ErrorCode = code match {
    case Status.Code.INVALID_ARGUMENT => ErrorCode.BAD_INPUT
    case _                            => ErrorCode.INTERNAL
  }

  /** goexec's ErrorDetail in the status details of e, if it sent one. */
  def detail(e: StatusRuntimeException): Option[ErrorDetail] =
    Option(StatusProto.fromThrowable(e)).iterator
      .flatMap(_.getDetailsList.asScala)
      .collectFirst { case a if a.is(classOf[ErrorDetail]) => a.unpack(classOf[ErrorDetail]) }

  /** The exception GoExec.call throws for a failed RPC. */
  def from(executorId: String, host: String, e: StatusRuntimeException): GoExecCallException = {
    val st = e.getStatus
    val d = detail(e)
    val code = d.map(_.getCode).filter(c => c != ErrorCode.ERROR_CODE_UNSPECIFIED && c != ErrorCode.UNRECOGNIZED)
      .getOrElse(codeOf(st.getCode))
    val description = Option(st.getDescription).getOrElse(st.getCode.name) +
      Option(st.getCause).map(c => s" ($c)").getOrElse("")
    new GoExecCallException(code, d.map(_.getSubject).getOrElse(""), d.map(_.getIteration).getOrElse(-1L),
      st.getCode, d.isDefined, executorId, host, description.replace('\n', ' '), e)
  }

  /** The first coded failure in t's messages or its causes' (a Spark job
    * failure carries the task's exception as text).
    */
  def find(t: Throwable): Option[Coded] =
    Iterator.iterate(t)(_.getCause).takeWhile(_ != null).take(16)
      .flatMap(x => Option(x.getMessage).iterator.flatMap(_.linesIterator))
      .collectFirst { case Marker(c, i, s, ex, host, d) if ErrorCode.values.exists(_.name == c) =>
        Coded(ErrorCode.valueOf(c), i.toLong, URLDecoder.decode(s, StandardCharsets.UTF_8), ex, host, d)
      }
}
