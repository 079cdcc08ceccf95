package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/memcheck"
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
	// Transform for a deploy net's Input layer (data layers use their own
	// transform_param).
	scale     float64
	meanValue string
	cropSize  int
	mirror    bool
}

// transformSet reports whether any Input-layer transform flag was given.
func (f *testFlags) transformSet() bool {
	return f.scale != 1 || f.meanValue != "" || f.cropSize != 0 || f.mirror
}

func (f *testFlags) transform() (data.Transform, error) {
	t := data.Transform{Scale: f.scale, CropSize: f.cropSize, Mirror: f.mirror}
	if f.meanValue != "" {
		for _, v := range strings.Split(f.meanValue, ",") {
			x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return t, fmt.Errorf("-mean-value %q: %w", f.meanValue, err)
			}
			t.MeanValue = append(t.MeanValue, x)
		}
	}
	return t, nil
}

func parseTestFlags(args []string, stderr io.Writer) (testFlags, error) {
	var f testFlags
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.model, "model", "", "net prototxt, built in the TEST phase (required)")
	fs.StringVar(&f.weights, "weights", "", "comma-separated .caffemodel files (required)")
	fs.StringVar(&f.data, "data", "", "data source for the net's data layers (mnist:DIR:test, parquet:PATH, FILE.parquet); default: the layers' own source")
	fs.IntVar(&f.iterations, "iterations", 0, "batches to score; 0: one pass over the source (its images / batch size, rounded up)")
	fs.Float64Var(&f.scale, "scale", 1, "Input-layer nets: transform_param scale for -data")
	fs.StringVar(&f.meanValue, "mean-value", "", "Input-layer nets: comma-separated mean_value (one, or one per channel)")
	fs.IntVar(&f.cropSize, "crop-size", 0, "Input-layer nets: centre crop_size")
	fs.BoolVar(&f.mirror, "mirror", false, "Input-layer nets: mirror images at random")
	f.log.register(fs, "console")
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
	if _, err := f.transform(); err != nil {
		problems = append(problems, err.Error())
	}
	if f.cropSize < 0 {
		problems = append(problems, fmt.Sprintf("-crop-size %d: must not be negative", f.cropSize))
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
	if err := checkNetMemory("testing "+f.model, np, &caffepb.NetState{Phase: caffepb.Phase_TEST.Enum()}, reg, false, memcheck.System()); err != nil {
		return err
	}
	n, err := network.New[float32](np, &caffepb.NetState{Phase: caffepb.Phase_TEST.Enum()}, reg, network.WithoutFillers())
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
	var srcs []data.Attached
	feedErr := func() error { return nil }
	defer func() {
		if err := n.CloseSources(); err != nil {
			log.Warn().Err(err).Msg("closing the data sources")
		}
	}()
	if len(n.FedLayers()) == 0 {
		// A deploy net: feed its Input layer from -data with the flags' transform.
		if srcs, feedErr, err = feedInput(ctx, n, &f); err != nil {
			return err
		}
	} else {
		if f.transformSet() {
			return errors.New("-scale, -mean-value, -crop-size and -mirror apply to Input-layer nets; this net's data layers use their transform_param")
		}
		if srcs, err = data.Attach(ctx, n, data.AttachOptions{Source: f.data}); err != nil {
			return err
		}
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
	if err := feedErr(); err != nil {
		return err
	}
	// The outputs go in their own object: a net's loss output is usually
	// named "loss" too, and a JSON object must not repeat a key.
	outs := zerolog.Dict()
	for _, sc := range scores {
		outs = outs.Float64(sc.Name, sc.Value)
	}
	ev := log.Info().Int("iterations", iters).Float64("loss", loss).Dict("outputs", outs)
	ev.Str("took", time.Since(start).Round(time.Millisecond).String()).Msg("test")
	fmt.Fprintf(stdout, "Loss: %g\n", loss)
	for _, sc := range scores {
		name := sc.Name
		if sc.LossWeight != 0 {
			fmt.Fprintf(stdout, "%s = %g (* %g = %g loss)\n", name, sc.Value, sc.LossWeight, sc.LossWeight*sc.Value)
		} else {
			fmt.Fprintf(stdout, "%s = %g\n", name, sc.Value)
		}
	}
	return nil
}

// feedInput attaches -data to the first Input layer of a deploy net: before
// that layer's forward pass the source fills its tops (data, and labels
// when the layer has a second top). The returned function reports a source
// error (the hook cannot return one through Forward).
func feedInput(ctx context.Context, n *network.Net[float32], f *testFlags) ([]data.Attached, func() error, error) {
	noErr := func() error { return nil }
	idx := -1
	for i, lp := range n.LayerParams() {
		if lp.GetType() == "Input" {
			idx = i
			break
		}
	}
	if idx < 0 || f.data == "" {
		return nil, noErr, nil
	}
	tops := n.Tops(idx)
	if tops[0].NumAxes() != 4 {
		return nil, nil, fmt.Errorf("Input layer %q: data top %s is not N×C×H×W", n.LayerNames()[idx], blob.ShapeString(tops[0].Shape()))
	}
	tf, err := f.transform()
	if err != nil {
		return nil, nil, err
	}
	hint := [3]int{tops[0].Dim(1), tops[0].Dim(2), tops[0].Dim(3)}
	src, err := data.Open[float32](ctx, f.data, data.Options{Transform: tf, Hint: hint})
	if err != nil {
		return nil, nil, err
	}
	var feedErr error
	n.SetHooks(network.Hooks{BeforeForward: func(i int) {
		if i == idx && feedErr == nil {
			feedErr = src.Next(tops)
		}
	}})
	return []data.Attached{{Layer: n.LayerNames()[idx], Source: f.data, Images: src.Len()}}, func() error { return feedErr }, nil
}

// batchOf returns the first dimension of the first data layer's first top.
func batchOf(n *network.Net[float32]) int {
	for i := range n.Layers() {
		if tops := n.Tops(i); len(tops) > 0 && tops[0].NumAxes() > 0 {
			return tops[0].Dim(0)
		}
	}
	return 0
}
