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

	"github.com/rs/zerolog"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/metrics"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/memcheck"
)

// runTrain trains a net from a solver prototxt, as `caffe train` does.
// SIGINT or SIGTERM stops training within one iteration, after a snapshot.
func runTrain(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return train(ctx, args, os.Stderr)
}

// logFlags are the logging flags train, test and time share with serve.
type logFlags struct{ format, level string }

// register adds -log-format (defaulting to defaultFormat) and -log-level to fs.
func (l *logFlags) register(fs *flag.FlagSet, defaultFormat string) {
	fs.StringVar(&l.format, "log-format", defaultFormat, "log format: console or json")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
}

// check returns one message per bad logging flag.
func (l *logFlags) check() []string {
	var p []string
	if l.format != "json" && l.format != "console" {
		p = append(p, fmt.Sprintf("-log-format %q: want json or console", l.format))
	}
	if _, err := zerolog.ParseLevel(l.level); err != nil || l.level == "" {
		p = append(p, fmt.Sprintf("-log-level %q: want debug, info, warn or error", l.level))
	}
	return p
}

type trainFlags struct {
	solver, weights, snapshot string
	metrics                   string
	seed                      int64
	gpu                       int
	log                       logFlags
	nonFinite                 string
}

func parseTrainFlags(args []string, stderr io.Writer) (trainFlags, error) {
	var f trainFlags
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.solver, "solver", "", "solver prototxt (required)")
	fs.StringVar(&f.weights, "weights", "", "comma-separated .caffemodel files to initialise from (not with -snapshot)")
	fs.StringVar(&f.snapshot, "snapshot", "", ".solverstate to resume from (not with -weights)")
	fs.StringVar(&f.metrics, "metrics", "", "validation-curve file (JSON lines; default PREFIX_metrics.jsonl beside the snapshots; \"none\": no file)")
	fs.Int64Var(&f.seed, "seed", -1, "override the solver's random_seed (-1: keep it)")
	fs.StringVar(&f.nonFinite, "nonfinite", "stop", "on a NaN or infinite loss or gradient: stop (exit non-zero, naming the layer) or warn (train on, as Caffe)")
	fs.IntVar(&f.gpu, "gpu", -1, "train on this GPU whatever the solver's solver_mode (-1: the solver's solver_mode and device_id decide)")
	f.log.register(fs, "console")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	problems := f.log.check()
	if _, err := solver.ParseNonFinite(f.nonFinite); err != nil || f.nonFinite == "" {
		problems = append(problems, fmt.Sprintf("-nonfinite %q: want stop or warn", f.nonFinite))
	}
	if f.solver == "" {
		problems = append(problems, "-solver is required")
	}
	if f.weights != "" && f.snapshot != "" {
		problems = append(problems, "give -weights or -snapshot, not both (-snapshot restores the weights it was saved with)")
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return f, errors.New(strings.Join(problems, "; "))
	}
	return f, nil
}

// train is runTrain with its context and log output passed in.
func train(ctx context.Context, args []string, stderr io.Writer) error {
	f, err := parseTrainFlags(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, f.log.format, f.log.level)
	sp, err := prototxt.ParseSolverFile(f.solver)
	if err != nil {
		return err
	}
	if err := checkSolverNets(sp); err != nil {
		return err
	}
	if f.seed >= 0 {
		sp.RandomSeed = &f.seed
	}
	dev := trainDevice(sp, f.gpu, log)
	reg, err := layers.Standard()
	if err != nil {
		return err
	}
	if err := checkMemory(sp, reg, f.solver, memcheck.System()); err != nil {
		return err
	}
	cache := &data.Cache{}
	seed := uint64(sp.GetRandomSeed())
	attach := func(ctx context.Context, n *network.Net[float32]) error {
		srcs, err := data.Attach(ctx, n, data.AttachOptions{Seed: seed, Cache: cache})
		for _, s := range srcs {
			log.Info().Str("net", n.Name()).Str("phase", n.Phase().String()).Str("layer", s.Layer).
				Str("source", s.Source).Int("images", s.Images).Msg("data source")
		}
		return err
	}
	start := time.Now()
	nonFinite, _ := solver.ParseNonFinite(f.nonFinite) // checked by parseTrainFlags
	opts := []solver.Option[float32]{solver.WithRegistry[float32](reg),
		solver.WithLogger[float32](log), solver.WithSources(attach), solver.WithDevice[float32](dev),
		solver.WithNonFinite[float32](nonFinite)}
	var mw *metrics.Writer
	if f.metrics != "none" {
		path := f.metrics
		if path == "" {
			path = metrics.PathFor(sp.GetSnapshotPrefix())
		}
		if mw, err = metrics.Create(path, f.snapshot != ""); err != nil {
			return err
		}
		defer mw.Close()
		opts = append(opts, metricsOptions(mw)...)
		log.Info().Str("metrics", path).Msg("validation curves")
	}
	s, err := solver.New[float32](ctx, sp, opts...)
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Close(); err != nil {
			log.Warn().Err(err).Msg("closing the data sources")
		}
	}()
	switch {
	case f.snapshot != "":
		if err := s.Restore(f.snapshot); err != nil {
			return err
		}
	case f.weights != "":
		for _, w := range strings.Split(f.weights, ",") {
			if err := s.LoadWeights(w); err != nil {
				return err
			}
			log.Info().Str("weights", w).Msg("initialised from weights")
		}
	}
	log.Info().Str("solver", f.solver).Int("params", paramCount(s.Params())).Str("setup", time.Since(start).Round(time.Millisecond).String()).Msg("training")
	if err := s.Solve(ctx); err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			// A signal: Solve has written its snapshot; stop cleanly as Caffe does.
			log.Warn().Int("iter", s.Iter()).Msg("stopped by signal")
			return nil
		}
		return err
	}
	if err := deviceErr(dev); err != nil {
		return fmt.Errorf("training on %s: %w", dev.Name(), err)
	}
	logConvChoices(dev, log, 0)
	ev := log.Info().Str("wall", time.Since(start).Round(time.Millisecond).String())
	if peak := devicePeak(dev); peak > 0 {
		ev = ev.Float64("device_memory_peak_mib", float64(peak)/(1<<20))
	}
	ev.Msg("done")
	if mw != nil {
		if n := mw.Skipped(); n > 0 {
			log.Warn().Int("records", n).Str("metrics", mw.Path()).Msg("NaN or infinite values left out of the metrics file")
		}
		if err := mw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// metricsOptions send each display's smoothed training loss and each test
// phase's scores to w.
func metricsOptions(w *metrics.Writer) []solver.Option[float32] {
	return []solver.Option[float32]{
		solver.WithProgress[float32](func(p solver.Progress) { w.Add(p.Iter, metrics.Train, "loss", p.Loss) }),
		solver.WithTestScores[float32](func(iter, net int, scores []solver.TestScore, _ float64) {
			for _, sc := range scores {
				w.Add(iter, metrics.TestPhase(net), sc.Name, sc.Value)
			}
		}),
	}
}

func paramCount[T blob.Float](ps []*blob.Blob[T]) int {
	n := 0
	for _, p := range ps {
		n += p.Count()
	}
	return n
}

// checkSolverNets gives a clear error for nets GoCaffe cannot feed yet
// (Caffe Data layers on LMDB), before the registry reports an unknown type.
func checkSolverNets(sp *caffepb.SolverParameter) error {
	var nets []*caffepb.NetParameter
	nets = append(nets, sp.GetNetParam(), sp.GetTrainNetParam())
	nets = append(nets, sp.GetTestNetParam()...)
	for _, p := range append([]string{sp.GetNet(), sp.GetTrainNet()}, sp.GetTestNet()...) {
		if p == "" {
			continue
		}
		np, err := prototxt.ParseNetFile(p)
		if err != nil {
			return err
		}
		nets = append(nets, np)
	}
	for _, np := range nets {
		if np == nil {
			continue
		}
		if err := data.CheckDataLayers(np); err != nil {
			return fmt.Errorf("net %q: %w", np.GetName(), err)
		}
	}
	return nil
}
