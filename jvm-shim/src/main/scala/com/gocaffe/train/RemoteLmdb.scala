package com.gocaffe.train

import java.io.EOFException
import java.util.Arrays

import scala.collection.mutable

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FSDataInputStream, Path}

/** A read-only LMDB reader over a Hadoop file system's positioned reads
  * (FSDataInputStream.readFully(pos, ...)): only the pages a key range
  * needs are read, never the whole `data.mdb`. For databases on remote file
  * systems (hdfs:, s3a:, ...), where LMDB's own mmap cannot reach.
  *
  * LMDB's on-disk layout (liblmdb 0.9, 64-bit, little-endian; file version
  * 1): pages 0 and 1 are meta pages, the one with the higher txnid is
  * current and holds the main database's root page, depth and entry count.
  * Every page starts with a 16-byte header (pgno u64, pad u16, flags u16,
  * lower u16, upper u16; an overflow page's lower/upper is its page count
  * u32), then lower-16 bytes of u16 node offsets. A node is lo u16, hi u16,
  * flags u16, key size u16, the key, then on a leaf the value (lo | hi<<16
  * bytes) or, with F_BIGDATA, the u64 number of the overflow pages holding
  * it; on a branch page lo | hi<<16 | flags<<32 is the child's page number
  * and node 0's key is empty (everything below the next key).
  */
final class RemoteLmdb private (in: FSDataInputStream, val path: String, val pageSize: Int, root: Long,
                                val entries: Long, val depth: Int) extends AutoCloseable {
  import RemoteLmdb._

  /** Pages read so far (overflow values not counted). */
  var pagesRead = 0L

  // A small cache of branch and leaf pages: a cursor walks down once and
  // along the leaves.
  private val cache = new java.util.LinkedHashMap[java.lang.Long, Array[Byte]](64, 0.75f, true) {
    override def removeEldestEntry(e: java.util.Map.Entry[java.lang.Long, Array[Byte]]): Boolean = size() > 256
  }

  private def page(pgno: Long): Array[Byte] = {
    val hit = cache.get(pgno)
    if (hit != null) return hit
    val p = new Array[Byte](pageSize)
    read(pgno * pageSize, p, s"page $pgno")
    pagesRead += 1
    val flags = u16(p, 10)
    if ((flags & (PBranch | PLeaf)) == 0 || (flags & (PLeaf2 | PSubp)) != 0)
      throw bad(s"page $pgno has flags 0x${flags.toHexString}, not a branch or leaf page")
    val lower = u16(p, 12)
    if (lower < HeaderSize || lower > pageSize) throw bad(s"page $pgno: node table ends at $lower")
    cache.put(pgno, p)
    p
  }

  private def read(pos: Long, buf: Array[Byte], what: String): Unit =
    try in.readFully(pos, buf, 0, buf.length)
    catch { case e: EOFException => throw bad(s"$what (${buf.length} bytes at offset $pos) lies past the end of the file", e) }

  private def bad(msg: String, cause: Throwable = null): GoCaffeException =
    new GoCaffeException(s"LMDB $path: $msg", cause)

  private def numKeys(p: Array[Byte]): Int = (u16(p, 12) - HeaderSize) >> 1
  private def isLeaf(p: Array[Byte]): Boolean = (u16(p, 10) & PLeaf) != 0
  private def node(p: Array[Byte], i: Int): Int = {
    val o = u16(p, HeaderSize + 2 * i)
    if (o < HeaderSize || o + NodeSize > pageSize) throw bad(s"page ${u64(p, 0)}: node $i at offset $o")
    o
  }
  private def key(p: Array[Byte], i: Int): Array[Byte] = {
    val o = node(p, i)
    val n = u16(p, o + 6)
    if (o + NodeSize + n > pageSize) throw bad(s"page ${u64(p, 0)}: key of node $i runs past the page")
    Arrays.copyOfRange(p, o + NodeSize, o + NodeSize + n)
  }
  private def child(p: Array[Byte], i: Int): Long = {
    val o = node(p, i)
    u16(p, o).toLong | (u16(p, o + 2).toLong << 16) | (u16(p, o + 4).toLong << 32)
  }

  /** Leaf node i's value, from an overflow page when it is big. */
  private def value(p: Array[Byte], i: Int): Array[Byte] = {
    val o = node(p, i)
    val size = u16(p, o).toLong | (u16(p, o + 2).toLong << 16)
    val flags = u16(p, o + 4)
    val at = o + NodeSize + u16(p, o + 6)
    if ((flags & (FSubdata | FDupdata)) != 0)
      throw bad("a record holds a sub-database or duplicates (not a database of Datums)")
    if ((flags & FBigdata) != 0) {
      if (size > Int.MaxValue - HeaderSize) throw bad(s"a value of $size bytes")
      val pgno = u64(p, at)
      val v = new Array[Byte](size.toInt)
      read(pgno * pageSize + HeaderSize, v, s"the overflow pages at $pgno")
      v
    } else {
      if (at + size > pageSize) throw bad(s"page ${u64(p, 0)}: value of node $i runs past the page")
      Arrays.copyOfRange(p, at, at + size.toInt)
    }
  }

  /** The first index of page p whose key is >= k (leaf), or the child whose
    * subtree holds k (branch: the last index whose key is <= k; 0 always is).
    */
  private def search(p: Array[Byte], k: Array[Byte]): Int = {
    var lo = if (isLeaf(p)) 0 else 1
    var hi = numKeys(p)
    while (lo < hi) {
      val mid = (lo + hi) >>> 1
      if (Arrays.compareUnsigned(key(p, mid), k) < 0) lo = mid + 1 else hi = mid
    }
    if (isLeaf(p)) lo
    else if (lo < numKeys(p) && Arrays.compareUnsigned(key(p, lo), k) == 0) lo
    else lo - 1
  }

  /** The records with start <= key < end (end empty: to the last), in key order. */
  def records(start: Array[Byte], end: Array[Byte]): Iterator[(Array[Byte], Array[Byte])] = {
    if (root == InvalidPage) return Iterator.empty
    val stack = mutable.Stack.empty[(Array[Byte], Int)] // branch pages and the child taken
    var p = page(root)
    while (!isLeaf(p)) {
      if (stack.size > 64) throw bad("the tree is deeper than 64 levels")
      val i = math.max(0, search(p, start))
      stack.push((p, i))
      p = page(child(p, i))
    }
    var leaf = p
    var i = search(p, start)
    new Iterator[(Array[Byte], Array[Byte])] {
      private var nextKey: Array[Byte] = null
      private def advance(): Unit = {
        while (leaf != null && i >= numKeys(leaf)) {
          // Up to the first branch with a child to the right, then down its leftmost path.
          while (stack.nonEmpty && stack.top._2 + 1 >= numKeys(stack.top._1)) stack.pop()
          if (stack.isEmpty) leaf = null
          else {
            val (b, c) = stack.pop()
            stack.push((b, c + 1))
            var q = page(child(b, c + 1))
            while (!isLeaf(q)) { stack.push((q, 0)); q = page(child(q, 0)) }
            leaf = q
            i = 0
          }
        }
        nextKey =
          if (leaf == null) null
          else {
            val k = key(leaf, i)
            if (end.nonEmpty && Arrays.compareUnsigned(k, end) >= 0) null else k
          }
      }
      advance()
      def hasNext: Boolean = nextKey != null
      def next(): (Array[Byte], Array[Byte]) = {
        if (nextKey == null) throw new NoSuchElementException
        val r = (nextKey, value(leaf, i))
        i += 1
        advance()
        r
      }
    }
  }

  /** Start keys of `parts` key ranges (the first empty: from the first
    * record) of about equal numbers of leaf pages, read from the branch
    * pages only: the separator keys above the leaves. A database of one
    * leaf is cut by its records.
    */
  def splitKeys(parts: Int): Seq[Array[Byte]] = {
    if (root == InvalidPage || parts <= 1) return Seq(Array.emptyByteArray)
    // Each level as (lower bound key, page) from the root down to the leaves' parents.
    var level = Seq((Array.emptyByteArray, root))
    val rootPage = page(root)
    if (isLeaf(rootPage)) {
      val n = numKeys(rootPage)
      return (0 until parts).map(j => if (j == 0) Array.emptyByteArray else key(rootPage, math.min(n - 1, math.max(1, j * n / parts))))
    }
    var leaves = false
    while (!leaves) {
      val next = level.flatMap { case (bound, pg) =>
        val p = page(pg)
        (0 until numKeys(p)).map(i => (if (i == 0) bound else key(p, i), child(p, i)))
      }
      // Stop at the level whose children are leaves: look at one of them.
      leaves = isLeaf(page(next.head._2))
      level = next
    }
    // Cut j > 0 starts at a leaf's lower bound, never the first leaf's (the
    // empty key, which as an end means "to the last record"); more ranges
    // than leaves leaves some empty ([k, k)).
    val n = level.size
    (0 until parts).map(j => if (j == 0) Array.emptyByteArray else level(math.min(n - 1, math.max(1, j * n / parts)))._1)
  }

  def close(): Unit = in.close()
}

object RemoteLmdb {
  private val HeaderSize = 16
  private val NodeSize = 8
  private val Magic = 0xBEEFC0DE
  private val InvalidPage = -1L
  private val PBranch = 0x01
  private val PLeaf = 0x02
  private val PLeaf2 = 0x20
  private val PSubp = 0x40
  private val FBigdata = 0x01
  private val FSubdata = 0x02
  private val FDupdata = 0x04
  private val DupSort = 0x04

  private def u16(b: Array[Byte], o: Int): Int = (b(o) & 0xff) | ((b(o + 1) & 0xff) << 8)
  private def u32(b: Array[Byte], o: Int): Long = (u16(b, o) | (u16(b, o + 2) << 16)).toLong & 0xffffffffL
  private def u64(b: Array[Byte], o: Int): Long = u32(b, o) | (u32(b, o + 4) << 32)

  /** Opens the LMDB directory (or data.mdb file) at path through Hadoop. */
  def open(path: String, hadoop: Configuration): RemoteLmdb = {
    val p0 = new Path(path)
    val fs = p0.getFileSystem(hadoop)
    val file = if (fs.exists(p0) && fs.getFileStatus(p0).isDirectory) new Path(p0, "data.mdb") else p0
    if (!fs.exists(file)) throw new GoCaffeException(s"LMDB $path: $file does not exist")
    val in = fs.open(file)
    try {
      def meta(off: Long): (Long, Array[Byte]) = {
        val b = new Array[Byte](HeaderSize + 136)
        try in.readFully(off, b, 0, b.length)
        catch { case e: EOFException => throw new GoCaffeException(s"LMDB $path: $file is too short for a meta page", e) }
        if (u32(b, HeaderSize) != (Magic & 0xffffffffL))
          throw new GoCaffeException(s"LMDB $path: $file is not an LMDB data file (no meta page at offset $off)")
        if (u32(b, HeaderSize + 4) != 1)
          throw new GoCaffeException(s"LMDB $path: file version ${u32(b, HeaderSize + 4)} (this reader knows LMDB 0.9's version 1)")
        (u64(b, HeaderSize + 128), b)
      }
      val (t0, m0) = meta(0)
      val psize = u32(m0, HeaderSize + 24).toInt
      if (psize < 512 || psize > (1 << 16) || Integer.bitCount(psize) != 1)
        throw new GoCaffeException(s"LMDB $path: page size $psize")
      val (t1, m1) = meta(psize)
      val m = if (t1 > t0) m1 else m0
      val main = HeaderSize + 72 // mm_dbs[MAIN_DBI]
      if ((u16(m, main + 4) & DupSort) != 0)
        throw new GoCaffeException(s"LMDB $path: the main database has sorted duplicates (not a database of Datums)")
      new RemoteLmdb(in, path, psize, u64(m, main + 40), u64(m, main + 32), u16(m, main + 6))
    } catch { case e: Throwable => in.close(); throw e }
  }
}
