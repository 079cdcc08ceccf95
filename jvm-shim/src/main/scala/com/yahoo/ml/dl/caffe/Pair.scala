package com.yahoo.ml.dl.caffe

/** CaffeOnSpark's (deprecated) `com.yahoo.ml.dl.caffe.Pair`, so that the
  * SequenceFile keys its tools wrote as a Java-serialized Pair(id, label)
  * deserialize here: same class name, fields (first, second) and
  * serialVersionUID.
  */
@SerialVersionUID(7441143885255676106L) // the default javac computes for CaffeOnSpark's Pair.java
class Pair[F, S](var first: F, var second: S) extends Serializable
