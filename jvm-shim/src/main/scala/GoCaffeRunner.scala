object GoCaffeRunner {
  def main(args: Array[String]): Unit = println(org.apache.spark.SPARK_VERSION)
}
