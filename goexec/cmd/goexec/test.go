package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/net"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	"github.com/gocaffe/gocaffe/caffe/solver"
)

// runTest scores trained weights on a data source, as `caffe test` does.
func runTest(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return testCmd(ctx, args, os.Stdout, os.Stderr)
}

type testFlags struct {
	model, weights, data string
	iterations           int
	log                  logFlags
}

func parseTestFlags(args []string, stderr io.Writer) (testFlags, error) {
	var f testFlags
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.model, "model", "", "net prototxt, built in the TEST phase (required)")
	fs.StringVar(&f.weights, "weights", "", "comma-separated .caffemodel files (required)")
	fs.StringVar(&f.data, "data", "", "data source for the net's data layers (mnist:DIR:test, parquet:PATH, FILE.parquet); default: the layers' own source")
	fs.IntVar(&f.iterations, "iterations", 0, "batches to score; 0: one pass over the source (its images / batch size, rounded up)")
	f.log.register(fs)
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	problems := f.log.check()
	if f.model == "" {
		problems = append(problems, "-model is required")
	}
	if f.weights == "" {
		problems = append(problems, "-weights is required")
	}
	if f.iterations < 0 {
		problems = append(problems, fmt.Sprintf("-iterations %d: must not be negative", f.iterations))
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return f, errors.New(strings.Join(problems, "; "))
	}
	return f, nil
}

// testCmd is runTest with its context and outputs passed in; the scores are
// printed to stdout as `caffe test` prints them: "Loss: L", then one
// "name = value" line per output (with its weighted loss for loss outputs).
func testCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseTestFlags(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, f.log.format, f.log.level)
	np, err := prototxt.ParseNetFile(f.model)
	if err != nil {
		return err
	}
	if f.data == "" {
		if err := data.CheckDataLayers(np); err != nil {
			return err
		}
	}
	reg, err := layers.Standard()
	if err != nil {
		return err
	}
	n, err := net.New[float32](np, &caffepb.NetState{Phase: caffepb.Phase_TEST.Enum()}, reg, net.WithoutFillers())
	if err != nil {
		return err
	}
	for _, w := range strings.Split(f.weights, ",") {
		trained, err := modelio.ReadCaffemodel(w)
		if err != nil {
			return err
		}
		if err := n.CopyTrainedLayersFrom(trained); err != nil {
			return fmt.Errorf("weights %s: %w", w, err)
		}
	}
	srcs, err := data.Attach(ctx, n, data.AttachOptions{Source: f.data})
	if err != nil {
		return err
	}
	iters := f.iterations
	if iters == 0 {
		if len(srcs) == 0 {
			return errors.New("the net has no data layer with a source: give -iterations")
		}
		batch := batchOf(n)
		if batch <= 0 {
			return errors.New("cannot tell the batch size: give -iterations")
		}
		iters = (srcs[0].Images + batch - 1) / batch
	}
	for _, s := range srcs {
		log.Info().Str("layer", s.Layer).Str("source", s.Source).Int("images", s.Images).Msg("data source")
	}
	start := time.Now()
	scores, loss, err := solver.Score(ctx, n, iters)
	if err != nil {
		return err
	}
	ev := log.Info().Int("iterations", iters).Float64("loss", loss)
	for _, sc := range scores {
		ev = ev.Float64(sc.Blob, sc.Value)
	}
	ev.Str("took", time.Since(start).Round(time.Millisecond).String()).Msg("test")
	fmt.Fprintf(stdout, "Loss: %g\n", loss)
	for _, sc := range scores {
		name := sc.Blob
		if n := countBlob(scores, sc.Blob); n > 1 {
			name = fmt.Sprintf("%s[%d]", sc.Blob, sc.Index)
		}
		if sc.LossWeight != 0 {
			fmt.Fprintf(stdout, "%s = %g (* %g = %g loss)\n", name, sc.Value, sc.LossWeight, sc.LossWeight*sc.Value)
		} else {
			fmt.Fprintf(stdout, "%s = %g\n", name, sc.Value)
		}
	}
	return nil
}

func countBlob(scores []solver.TestScore, name string) int {
	c := 0
	for _, s := range scores {
		if s.Blob == name {
			c++
		}
	}
	return c
}

// batchOf returns the first dimension of the first data layer's first top.
func batchOf(n *net.Net[float32]) int {
	for i := range n.Layers() {
		if tops := n.Tops(i); len(tops) > 0 && tops[0].NumAxes() > 0 {
			return tops[0].Dim(0)
		}
	}
	return 0
}
