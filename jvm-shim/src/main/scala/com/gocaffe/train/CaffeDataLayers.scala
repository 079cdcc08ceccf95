package com.gocaffe.train

import scala.collection.mutable

import caffe.Caffe.{DataParameter, LayerParameter, MemoryDataParameter, NetParameter}
import org.apache.hadoop.conf.Configuration

/** Caffe's `Data` layer (an LMDB or LevelDB database of Datums) in a net
  * given to spark-submit: read as CaffeOnSpark's `com.yahoo.ml.caffe.LMDB`
  * source is ([[LmdbSource]]: key ranges, each rank reading its own).
  *
  * The driver rewrites each Data layer with a data_param.source into the
  * MemoryData layer the ranks are fed through: same name, tops, include
  * rules and transform_param, source_class com.yahoo.ml.caffe.LMDB,
  * memory_data_param with the layer's batch_size and source and the sample
  * shape Caffe's Data layer takes from the database's first usable record
  * (`goexec db-split -shape`). data_param stays, for its backend (LevelDB by
  * Caffe's default). force_color/force_gray become the channel count the
  * images are decoded to. transform_param stays: crop_size crops at random
  * in TRAIN and at the centre in TEST (the MemoryData top has the crop's
  * size), and a mean_file is read by the driver and sent with the
  * partitions ([[DistributedTrainer]]).
  *
  * Each HDF5Data layer becomes the CoSData layer [[HDF5Source]] feeds (row
  * ranges, each rank reading its own).
  */
object CaffeDataLayers {

  /** spec with its nets' Data layers rewritten; spec itself when it has none. */
  def onSpark(spec: SolverSpec, hadoop: Configuration): SolverSpec = {
    val s = spec.solver
    val nets = Seq(s.getNetParam, s.getTrainNetParam) ++ (0 until s.getTestNetParamCount).map(s.getTestNetParam)
    if (!nets.exists(n => (0 until n.getLayerCount).exists(i => isData(n.getLayer(i)) || isHDF5(n.getLayer(i))))) return spec
    // A database read by both phases' layers is asked for its shape once.
    val shapes = mutable.Map.empty[(String, String, Boolean, Boolean), (Int, Int, Int)]
    def rewrite(net: NetParameter): NetParameter = {
      val b = net.toBuilder
      for (i <- 0 until b.getLayerCount if isData(b.getLayer(i)))
        b.setLayer(i, asMemoryData(b.getLayer(i), spec.solverPath, hadoop, shapes))
      for (i <- 0 until b.getLayerCount if isHDF5(b.getLayer(i)))
        b.setLayer(i, asCoSData(b.getLayer(i), spec.solverPath, hadoop))
      b.build()
    }
    val sb = s.toBuilder
    if (s.hasNetParam) sb.setNetParam(rewrite(s.getNetParam))
    if (s.hasTrainNetParam) sb.setTrainNetParam(rewrite(s.getTrainNetParam))
    for (i <- 0 until s.getTestNetParamCount) sb.setTestNetParam(i, rewrite(s.getTestNetParam(i)))
    CaffeFiles.specOf(spec.solverPath, sb.build())
  }

  private def isData(l: LayerParameter): Boolean = l.getType == "Data" && l.getDataParam.hasSource

  private def isHDF5(l: LayerParameter): Boolean = l.getType == "HDF5Data" && l.getHdf5DataParam.hasSource

  /** An HDF5Data layer as the CoSData layer [[HDF5Source]] feeds, its list
    * and every file's headers checked here, before training starts.
    */
  private def asCoSData(l: LayerParameter, solverPath: String, hadoop: Configuration): LayerParameter = {
    val p = l.getHdf5DataParam
    val what = s"$solverPath: data layer '${l.getName}': HDF5 list ${p.getSource}"
    if (p.getBatchSize <= 0) throw new GoCaffeException(s"$what: hdf5_data_param.batch_size must be positive")
    if (l.getTopCount == 0) throw new GoCaffeException(s"$what: no top (each top names a dataset)")
    HDF5Source.asCoSData(l, HDF5Source.split(p.getSource, l.getTopList.toArray.map(_.toString).toSeq, what, hadoop))
  }

  private def asMemoryData(l: LayerParameter, solverPath: String, hadoop: Configuration,
                           shapes: mutable.Map[(String, String, Boolean, Boolean), (Int, Int, Int)]): LayerParameter = {
    val dp = l.getDataParam
    val tp = l.getTransformParam
    val backend = LmdbSource.backendOf(l)
    val what = s"$solverPath: data layer '${l.getName}': ${if (backend == "lmdb") "LMDB" else "LevelDB"} ${dp.getSource}"
    if (dp.getBatchSize <= 0) throw new GoCaffeException(s"$what: data_param.batch_size must be positive")
    if (tp.getForceColor && tp.getForceGray)
      throw new GoCaffeException(s"$what: transform_param force_color and force_gray cannot both be set")
    val (c, h, w) = shapes.getOrElseUpdate((dp.getSource, backend, tp.getForceColor, tp.getForceGray),
      LmdbSource.shapeOf(dp.getSource, backend, tp.getForceColor, tp.getForceGray, what, hadoop))
    val b = l.toBuilder
      .setType("MemoryData")
      .setSourceClass(LmdbSource.Class)
      .setMemoryDataParam(MemoryDataParameter.newBuilder()
        .setBatchSize(dp.getBatchSize).setChannels(c).setHeight(h).setWidth(w).setSource(dp.getSource))
    if (l.hasTransformParam) b.setTransformParam(tp.toBuilder.clearForceColor().clearForceGray())
    if (!dp.hasBackend) b.setDataParam(dp.toBuilder.setBackend(DataParameter.DB.LEVELDB))
    b.build()
  }
}
