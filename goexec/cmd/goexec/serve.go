package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/server"
	gotrain "github.com/gocaffe/gocaffe/goexec/train"
)

// runServe runs the gRPC server on a Unix socket until SIGTERM or SIGINT.
func runServe(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// The log goes to the parent JVM through a pipe. When the JVM dies, a
	// write to it must fail with EPIPE, not kill goexec with SIGPIPE before
	// it has cleaned up.
	signal.Ignore(syscall.SIGPIPE)
	return serve(ctx, args, os.Stdin, os.Stderr)
}

// serveFlags are the flags of 'goexec serve'.
type serveFlags struct {
	socket       string
	log          logFlags
	exitOnEOF    bool
	removeOnExit string
	grace        time.Duration
	limits       runtimeLimits
	nonFinite    string
	gpus         string
}

func parseServeFlags(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.socket, "socket", "", "Unix socket path to listen on (required; created with mode 0600)")
	f.log.register(fs, "json")
	fs.BoolVar(&f.exitOnEOF, "exit-on-stdin-eof", false, "stop when standard input closes (the parent JVM died)")
	fs.StringVar(&f.removeOnExit, "remove-on-exit", "", "directory to remove when stopping because standard input closed or on SIGTERM/SIGINT")
	fs.DurationVar(&f.grace, "grace", 10*time.Second, "how long in-flight calls may run after a stop request")
	f.limits.register(fs)
	fs.StringVar(&f.nonFinite, "nonfinite", "stop", "on a NaN or infinite loss or gradient: stop the round with code DIVERGED, or warn and train on (spark.gocaffe.nonFinite)")
	fs.StringVar(&f.gpus, "gpus", "", "comma-separated GPU addresses Spark granted this executor (CUDA ordinals); empty: the CPU")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var problems []string
	if f.socket == "" {
		problems = append(problems, "-socket is required")
	}
	problems = append(problems, f.log.check()...)
	problems = append(problems, f.limits.check()...)
	if _, err := solver.ParseNonFinite(f.nonFinite); err != nil || f.nonFinite == "" {
		problems = append(problems, fmt.Sprintf("-nonfinite %q: want stop or warn", f.nonFinite))
	}
	if f.removeOnExit != "" && !f.exitOnEOF {
		problems = append(problems, "-remove-on-exit needs -exit-on-stdin-eof")
	}
	if f.gpus != "" {
		if _, err := parseGPUs(f.gpus); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return f, errors.New(strings.Join(problems, "; "))
	}
	return f, nil
}

// newLogger builds the zerolog logger for a log format and level.
func newLogger(w io.Writer, format, level string) zerolog.Logger {
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("component", "goexec").Int("pid", os.Getpid()).Logger()
}

// serve is runServe with its context, input and log output passed in.
func serve(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, f.log.format, f.log.level)
	if f.gpus != "" {
		serveGPUs(f.gpus, log)
	}
	defer f.limits.apply()()
	f.limits.log(log)
	lis, err := server.ListenUnix(f.socket)
	if err != nil {
		return err
	}
	defer lis.Close()

	signalled := ctx.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parentGone := make(chan struct{})
	if f.exitOnEOF {
		go func() {
			// Read until EOF: the parent holds the write end, so EOF means it exited.
			_, _ = io.Copy(io.Discard, stdin)
			log.Warn().Msg("standard input closed: parent process is gone, stopping")
			close(parentGone)
			cancel()
		}()
	}
	nonFinite, _ := solver.ParseNonFinite(f.nonFinite) // checked by parseServeFlags
	trainer, err := gotrain.New(gotrain.WithLogger(log), gotrain.WithNonFinite(nonFinite))
	if err != nil {
		return err
	}
	defer trainer.Close()
	srv := server.New(
		server.WithVersion(version),
		server.WithLogger(log),
		server.WithGracePeriod(f.grace),
		server.WithService(trainer.Register),
		server.WithGRPCOptions(gotrain.ServerOptions()...),
	)
	err = srv.Serve(ctx, lis)
	// The parent's death or a signal (Ctrl-C reaches the whole process
	// group, JVM and goexec alike): nobody else may be left to clean up.
	if f.removeOnExit != "" && (closed(parentGone) || closed(signalled)) {
		dir := filepath.Clean(f.removeOnExit)
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			log.Error().Err(rmErr).Str("dir", dir).Msg("cleanup failed")
		} else {
			log.Info().Str("dir", dir).Msg("removed work directory")
		}
	}
	return err
}

// closed reports whether c is closed, without blocking.
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
