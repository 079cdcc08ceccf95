package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/memcheck"
)

// runBench times whole training iterations (forward, backward, SGD
// update) of nets at given batch sizes on random data, one line per case.
func runBench(args []string) error {
	return benchCmd(context.Background(), args, os.Stdout, os.Stderr)
}

type benchFlags struct {
	cases      string
	gpu        int
	iterations int
	warmup     int
	graphs     bool
	data       string
	sample     string
	shape      [3]int // sample, parsed
	log        logFlags
}

// benchCase is one net at one batch size.
type benchCase struct {
	name, model string
	batch       int
}

func parseBenchFlags(args []string, stderr io.Writer) (benchFlags, []benchCase, error) {
	var f benchFlags
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.cases, "cases", "lenet:examples/lenet_train_test.prototxt:64",
		"comma-separated NAME:NET_PROTOTXT:BATCH cases (the TRAIN phase's data layers get random batches of BATCH)")
	fs.IntVar(&f.gpu, "gpu", -1, "GPU ordinal (-1: the CPU)")
	fs.IntVar(&f.iterations, "iterations", 200, "timed training iterations per case")
	fs.IntVar(&f.warmup, "warmup", 20, "untimed iterations first")
	fs.BoolVar(&f.graphs, "graphs", true, "on a GPU, replay the training iteration as a CUDA graph (false: launch every kernel from the host)")
	fs.StringVar(&f.data, "data", "fixed", "fixed: one random batch, set once and left in place (on a GPU it stays in device memory, as bench/torch/gpu.py's tensors do); "+
		"fresh: a new batch copied in on the host every iteration (from two made before timing), so its upload is timed too")
	fs.StringVar(&f.sample, "sample", "3,256,256", "CHANNELS,HEIGHT,WIDTH of one stored sample, for nets with database-backed Data layers "+
		"(bench feeds them random batches of that shape, cropped to transform_param.crop_size; the database is not read)")
	f.log.register(fs, "console")
	if err := fs.Parse(args); err != nil {
		return f, nil, err
	}
	problems := f.log.check()
	var err error
	if f.shape, err = parseSample(f.sample); err != nil {
		problems = append(problems, err.Error())
	}
	var cases []benchCase
	for _, c := range strings.Split(f.cases, ",") {
		p := strings.Split(c, ":")
		if len(p) != 3 {
			problems = append(problems, fmt.Sprintf("-cases: %q is not NAME:NET_PROTOTXT:BATCH", c))
			continue
		}
		b, err := strconv.Atoi(p[2])
		if err != nil || b < 1 {
			problems = append(problems, fmt.Sprintf("-cases: %q: batch %q is not a positive integer", c, p[2]))
			continue
		}
		cases = append(cases, benchCase{p[0], p[1], b})
	}
	if f.data != "fixed" && f.data != "fresh" {
		problems = append(problems, fmt.Sprintf("-data %q: want fixed or fresh", f.data))
	}
	if f.iterations < 1 || f.warmup < 0 {
		problems = append(problems, fmt.Sprintf("-iterations %d, -warmup %d: want at least 1 and 0", f.iterations, f.warmup))
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return f, nil, errors.New(strings.Join(problems, "; "))
	}
	return f, cases, nil
}

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, cases, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, f.log.format, f.log.level)
	dev, warning := chooseDevice(f.gpu >= 0, max(f.gpu, 0))
	if warning != "" {
		return errors.New(warning) // a benchmark on the wrong device is no answer
	}
	if g := deviceGEMM(dev); g != "" {
		log.Info().Msg(g)
	}
	reg, err := layers.Standard()
	if err != nil {
		return err
	}
	logged := 0 // convolution pass decisions logged so far
	for _, c := range cases {
		np, err := prototxt.ParseNetFile(c.model)
		if err != nil {
			return err
		}
		if np, _, err = network.DataAsMemory(np, f.shape); err != nil {
			return fmt.Errorf("bench %s: %w", c.name, err)
		}
		for _, lp := range np.GetLayer() {
			if d := lp.GetDataParam(); d != nil {
				d.BatchSize = proto.Uint32(uint32(c.batch))
			}
			if d := lp.GetMemoryDataParam(); d != nil {
				d.BatchSize = proto.Uint32(uint32(c.batch))
			}
		}
		sp := &caffepb.SolverParameter{
			NetParam: np, BaseLr: proto.Float32(0.01), Momentum: proto.Float32(0.9), WeightDecay: proto.Float32(5e-4),
			LrPolicy: proto.String("fixed"), MaxIter: proto.Int32(int32(f.warmup + f.iterations)), Display: proto.Int32(0),
			RandomSeed: proto.Int64(1),
		}
		attach := func(_ context.Context, n *network.Net[float32]) error {
			for i, name := range n.FedLayers() {
				// Labels 0 or 1: valid for any classifier.
				if err := n.SetSource(name, data.NewSynthetic(uint64(i), 2, f.data == "fresh")); err != nil {
					return err
				}
			}
			return nil
		}
		// On the CPU the net lives in this process's memory: check it first,
		// as train does, rather than die of the runtime's out-of-memory.
		if f.gpu < 0 {
			if err := checkMemory(sp, reg, fmt.Sprintf("%s (%s) at batch %d", c.name, c.model, c.batch), memcheck.System()); err != nil {
				return fmt.Errorf("bench %s: %w", c.name, err)
			}
		}
		opts := []solver.Option[float32]{solver.WithRegistry[float32](reg), solver.WithLogger[float32](log),
			solver.WithoutTestNets[float32](), solver.WithSources(attach), solver.WithDevice[float32](dev)}
		if !f.graphs {
			opts = append(opts, solver.WithoutGraphs[float32]())
		}
		s, err := solver.New[float32](ctx, sp, opts...)
		if err != nil {
			return fmt.Errorf("bench %s: %w", c.name, err)
		}
		if err := s.Step(ctx, f.warmup); err != nil {
			return fmt.Errorf("bench %s: %w", c.name, err)
		}
		if err := deviceErr(dev); err != nil { // also waits for the warm-up
			return fmt.Errorf("bench %s: %w", c.name, err)
		}
		start := time.Now()
		if err := s.Step(ctx, f.iterations); err != nil {
			return fmt.Errorf("bench %s: %w", c.name, err)
		}
		if err := deviceErr(dev); err != nil {
			return fmt.Errorf("bench %s: %w", c.name, err)
		}
		logged = logConvChoices(dev, log, logged)
		us := float64(time.Since(start).Microseconds()) / float64(f.iterations)
		mem := ""
		if peak := devicePeak(dev); peak > 0 {
			mem = fmt.Sprintf(", device memory peak %.1f MiB (all cases so far)", float64(peak)/(1<<20))
		}
		mode := ""
		if f.graphs && f.gpu >= 0 {
			mode = fmt.Sprintf(", %d of %d iterations replayed", s.Replays(), f.warmup+f.iterations)
			if why := s.NotReplayedBecause(); why != "" {
				mode += " (" + why + ")"
			}
		}
		fmt.Fprintf(stdout, "bench %s b%d %s %s, data %s: %.1f us/iter, %.0f img/s, loss %.4f%s%s\n",
			c.name, c.batch, dev.Name(), devicePrecision(dev), f.data, us, float64(c.batch)/us*1e6, s.SmoothedLoss(), mem, mode)
	}
	return nil
}

// parseSample reads -sample's CHANNELS,HEIGHT,WIDTH.
func parseSample(s string) ([3]int, error) {
	var out [3]int
	p := strings.Split(s, ",")
	if len(p) != 3 {
		return out, fmt.Errorf("-sample %q: want CHANNELS,HEIGHT,WIDTH", s)
	}
	for i := range p {
		v, err := strconv.Atoi(strings.TrimSpace(p[i]))
		if err != nil || v < 1 {
			return out, fmt.Errorf("-sample %q: %q is not a positive integer", s, p[i])
		}
		out[i] = v
	}
	return out, nil
}
