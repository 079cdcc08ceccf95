package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/db"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	"github.com/gocaffe/gocaffe/goexec/memcheck"
)

// runTime times each layer's forward and backward pass, as `caffe time` does.
func runTime(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return timeCmd(ctx, args, os.Stdout, os.Stderr)
}

type timeFlags struct {
	model, phase, data string
	iterations         int
	synthetic          bool
	log                logFlags
}

func parseTimeFlags(args []string, stderr io.Writer) (timeFlags, error) {
	var f timeFlags
	fs := flag.NewFlagSet("time", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.model, "model", "", "net prototxt (required)")
	fs.IntVar(&f.iterations, "iterations", 50, "timed forward/backward iterations")
	fs.StringVar(&f.phase, "phase", "TRAIN", "net phase: TRAIN or TEST")
	fs.StringVar(&f.data, "data", "", "data source for the data layers; default: their own source, else random synthetic batches")
	fs.BoolVar(&f.synthetic, "synthetic", false, "feed every data layer random synthetic batches, ignoring its source (a Data layer still takes its image shape from its database)")
	f.log.register(fs, "console")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	problems := f.log.check()
	if f.model == "" {
		problems = append(problems, "-model is required")
	}
	if f.iterations < 1 {
		problems = append(problems, fmt.Sprintf("-iterations %d: must be at least 1", f.iterations))
	}
	if f.phase != "TRAIN" && f.phase != "TEST" {
		problems = append(problems, fmt.Sprintf("-phase %q: want TRAIN or TEST", f.phase))
	}
	if f.synthetic && f.data != "" {
		problems = append(problems, "give -data or -synthetic, not both")
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return f, errors.New(strings.Join(problems, "; "))
	}
	return f, nil
}

// shapeHint adds to a missing database's error under -synthetic why the
// database is still needed: a Data layer's image shape is its first
// record's, as in Caffe.
func (f timeFlags) shapeHint(err error) error {
	if !f.synthetic || !errors.Is(err, db.ErrMissing) {
		return err
	}
	return fmt.Errorf("%w (-synthetic feeds random batches, but a Data layer takes its image shape from its database's first record: "+
		"give the database, or time a net whose input is an Input or DummyData layer, such as its deploy prototxt)", err)
}

// synthetic is a source of random data and zero labels, for timing a net
// whose data layers name no source.
type synthetic struct{ rng *rand.Rand }

func (s synthetic) Next(top []*blob.Blob[float32]) error {
	x := top[0].Data()
	for i := range x {
		x[i] = s.rng.Float32()
	}
	for _, t := range top[1:] {
		clear(t.Data())
	}
	return nil
}

// timeCmd is runTime with its context and outputs passed in. It prints a
// per-layer table of average forward and backward milliseconds to stdout.
func timeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseTimeFlags(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, f.log.format, f.log.level)
	np, err := prototxt.ParseNetFile(f.model)
	if err != nil {
		return err
	}
	if f.data == "" && !f.synthetic {
		if err := data.CheckDataLayers(np); err != nil {
			return err
		}
	}
	reg, err := layers.Standard()
	if err != nil {
		return err
	}
	phase := caffepb.Phase_TRAIN
	if f.phase == "TEST" {
		phase = caffepb.Phase_TEST
	}
	if err := checkNetMemory("timing "+f.model, np, &caffepb.NetState{Phase: phase.Enum()}, reg, true, memcheck.System()); err != nil {
		return f.shapeHint(err)
	}
	n, err := network.New[float32](np, &caffepb.NetState{Phase: phase.Enum()}, reg, network.WithSeed(1),
		network.WithDevice(cpuTrainDevice(log)))
	if err != nil {
		return f.shapeHint(err)
	}
	for i, name := range n.FedLayers() {
		lp := n.LayerParams()[n.LayerIndex(name)]
		if !f.synthetic && (f.data != "" || data.SourceOf(lp) != "") {
			continue
		}
		if err := n.SetSource(name, synthetic{rand.New(rand.NewPCG(uint64(i), 1))}); err != nil {
			return err
		}
		log.Info().Str("layer", name).Msg("no source: timing with random synthetic batches")
	}
	if !f.synthetic {
		if _, err := data.Attach(ctx, n, data.AttachOptions{Source: f.data, Seed: 1, SkipUnnamed: true}); err != nil {
			return err
		}
	}
	nl := len(n.Layers())
	fwd, bwd := make([]time.Duration, nl), make([]time.Duration, nl)
	var t0 time.Time
	n.SetHooks(network.Hooks{
		BeforeForward:  func(int) { t0 = time.Now() },
		AfterForward:   func(i int) { fwd[i] += time.Since(t0) },
		BeforeBackward: func(int) { t0 = time.Now() },
		AfterBackward:  func(i int) { bwd[i] += time.Since(t0) },
	})
	// One untimed pass allocates buffers and warms caches, as Caffe's
	// "initial loss" pass does.
	loss, err := n.ForwardBackward()
	if err != nil {
		return err
	}
	log.Info().Float64("initial_loss", float64(loss)).Int("iterations", f.iterations).Msg("timing")
	clear(fwd)
	clear(bwd)
	var fTotal, bTotal time.Duration
	start := time.Now()
	for it := 0; it < f.iterations; it++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		n.ClearParamDiffs()
		ts := time.Now()
		if _, err := n.Forward(); err != nil {
			return err
		}
		tf := time.Now()
		if err := n.Backward(); err != nil {
			return err
		}
		fTotal += tf.Sub(ts)
		bTotal += time.Since(tf)
	}
	total := time.Since(start)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(f.iterations) }
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "layer\ttype\tforward ms\tbackward ms\t")
	names := n.LayerNames()
	for i := 0; i < nl; i++ {
		fmt.Fprintf(tw, "%s\t%s\t%.4f\t%.4f\t\n", names[i], n.LayerParams()[i].GetType(), ms(fwd[i]), ms(bwd[i]))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "Average Forward pass: %.4f ms\n", ms(fTotal))
	fmt.Fprintf(stdout, "Average Backward pass: %.4f ms\n", ms(bTotal))
	fmt.Fprintf(stdout, "Average Forward-Backward: %.4f ms\n", ms(fTotal+bTotal))
	fmt.Fprintf(stdout, "Total Time: %.1f ms for %d iterations\n", float64(total.Microseconds())/1000, f.iterations)
	log.Info().Float64("forward_ms", ms(fTotal)).Float64("backward_ms", ms(bTotal)).Float64("forward_backward_ms", ms(fTotal+bTotal)).Msg("average per iteration")
	return nil
}
