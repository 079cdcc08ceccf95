// Command goexec is GoCaffe's executor process: the gRPC server that a Spark
// executor starts, and the standalone tools (inspect, train, test, time).
package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
)

// command is one goexec subcommand; each lives in its own file.
type command struct {
	summary string
	run     func(args []string) error
}

func commands() map[string]command {
	cmds := map[string]command{
		"serve":      {"run the gRPC server a Spark executor talks to", runServe},
		"prepare":    {"parse and upgrade a solver and its nets for the Spark driver", runPrepare},
		"conf-check": {"check spark.gocaffe.* settings and print their resolved values", runConfCheck},
		"version":    {"print the version", runVersion},
		"inspect":    {"print a net's layers, shapes and parameter counts", runInspect},
		"train":      {"train a net from a solver prototxt", runTrain},
		"test":       {"score a trained net on a data source", runTest},
		"export":     {"write a deploy net and its weights as an ONNX model", runExport},
		"forward":    {"run a deploy net on .npy inputs and write its blobs as .npy", runForward},
		"plot":       {"draw a metrics file's loss and accuracy curves as a PNG", runPlot},
		"time":       {"time each layer's forward and backward pass", runTime},
		"bench":      {"time whole training iterations of nets on random data (CPU or -gpu N)", runBench},
		// Caffe's data tools (convert.go).
		"convert_mnist":      {"write MNIST to an LMDB or LevelDB as Caffe's create_mnist.sh", runConvertMNIST},
		"convert_imageset":   {"write a list of images to an LMDB or LevelDB as Caffe's tool", runConvertImageset},
		"compute_image_mean": {"write a database's mean image as a binaryproto", runComputeImageMean},
		"db-split":           {"cut an LMDB/LevelDB into key ranges (for the Spark shim)", runDBSplit},
		"db-rows":            {"stream one key range of an LMDB/LevelDB (for the Spark shim)", runDBRows},
		"ldb-plan":           {"cut a remote LevelDB into key ranges from its MANIFEST (for the Spark shim)", runLDBPlan},
		"h5-split":           {"check an HDF5Data list and count its files' rows (for the Spark shim)", runH5Split},
		"h5-rows":            {"stream one row range of an HDF5 file (for the Spark shim)", runH5Rows},
	}
	for n, c := range cudaCommands() {
		cmds[n] = c
	}
	return cmds
}

func usage() string {
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: goexec <command> [flags]\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-18s %s\n", n, cmds[n].summary)
	}
	b.WriteString("\nRun 'goexec <command> -h' for a command's flags.\n")
	return b.String()
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage())
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands()[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "goexec: unknown command %q\n\n%s", os.Args[1], usage())
		os.Exit(2)
	}
	stop, err := startProfile(os.Getenv("GOCAFFE_CPUPROFILE"))
	if err == nil {
		err = cmd.run(os.Args[2:])
		stop()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "goexec %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// startProfile writes a CPU profile of the command to path, when set
// (GOCAFFE_CPUPROFILE: where a command's host time goes, on a machine
// without Go's tools; read it with `go tool pprof goexec path`).
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("GOCAFFE_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("GOCAFFE_CPUPROFILE: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
