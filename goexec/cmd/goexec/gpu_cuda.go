//go:build cuda

package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/rs/zerolog"

	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/cuda"
)

// cudaBuild is whether this goexec has the CUDA backend.
const cudaBuild = true

func openGPU(ordinal int) (kernels.Device, error) {
	g, err := cuda.NewGPU(ordinal)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// deviceErr is the first CUDA error of a GPU device (nil on the CPU).
func deviceErr(d kernels.Device) error {
	if g, ok := d.(*cuda.GPU); ok {
		return g.Err()
	}
	return nil
}

// devicePeak is the most device memory a GPU device's backends held at once
// (0 on the CPU).
func devicePeak(d kernels.Device) int64 {
	if g, ok := d.(*cuda.GPU); ok {
		_, peak := g.D.Memory()
		return peak
	}
	return 0
}

// deviceGEMM is the one line that says which GEMMs a GPU device runs:
// cuBLAS (the library and where it was found) or GoCaffe's own kernels
// (and where cuBLAS was looked for), whether TF32 is allowed, and whether
// cuDNN was found (where) and runs the convolutions ("" on the CPU).
func deviceGEMM(d kernels.Device) string {
	g, ok := d.(*cuda.GPU)
	if !ok {
		return ""
	}
	line := g.D.BLAS()
	if g.D.TF32() {
		line += "; float32 GEMMs may use TF32 tensor cores (" + cuda.TF32Setting + "=1)"
	}
	return line + "; " + g.D.DNN()
}

// devicePrecision is how a device's float32 GEMMs compute: "tf32" on a
// GPU that allows TF32 tensor cores, else "fp32"; cuBLAS or GoCaffe's own
// kernels is added on a GPU ("fp32 cuBLAS", "tf32 own GEMM"), after
// "cuDNN conv," ("cuDNN conv unused," when no convolution ran on it) and
// "direct conv k/n passes," (k of the n convolution passes decided on
// GoCaffe's direct kernels) and "copy stream," when those are on.
func devicePrecision(d kernels.Device) string {
	g, ok := d.(*cuda.GPU)
	if !ok {
		return "fp32"
	}
	p := "fp32"
	if g.D.TF32() {
		p = "tf32"
	}
	if g.D.UsesDNN() {
		if g.D.DNNCalls() > 0 {
			p += " cuDNN conv,"
		} else {
			p += " cuDNN conv unused,"
		}
	}
	if direct, decided := g.D.DirectConvChoices(); direct > 0 {
		p += fmt.Sprintf(" direct conv %d/%d passes,", direct, decided)
	}
	if g.D.CopyStream() {
		p += " copy stream,"
	}
	if g.D.UsesBLAS() {
		return p + " cuBLAS"
	}
	return p + " own GEMM"
}

// cudaCommands are the CUDA build's extra commands.
func cudaCommands() map[string]command {
	return map[string]command{
		"cuda-probe": {"open a GPU and print what it is (exit status 1 if it cannot be used)", runCUDAProbe},
	}
}

// runCUDAProbe opens GPU -device and prints "cuda:N <model> driver
// <version>", then the line that says whether cuBLAS and cuDNN were found
// and where (or where they were looked for).
func runCUDAProbe(args []string) error {
	fs := flag.NewFlagSet("cuda-probe", flag.ContinueOnError)
	ordinal := fs.Int("device", 0, "GPU ordinal (as CUDA numbers the visible devices)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", strings.Join(fs.Args(), " "))
	}
	g, err := cuda.NewGPU(*ordinal)
	if err != nil {
		return err
	}
	defer g.Close()
	fmt.Printf("%s %s driver %d\n%s\n%s\n", g.Name(), g.D.Model(), cuda.DriverVersion(), g.D.BLAS(), g.D.DNN())
	return nil
}

// logConvChoices logs, at debug level, how each convolution pass of each
// shape was decided on a GPU (GoCaffe's direct kernels or cuDNN's, and
// the replayed timings or the reason behind it), from the from-th
// decision on, and returns how many there are.
func logConvChoices(d kernels.Device, log zerolog.Logger, from int) int {
	g, ok := d.(*cuda.GPU)
	if !ok {
		return 0
	}
	all := g.D.DirectConvDecisions()
	for _, dd := range all[min(from, len(all)):] {
		log.Debug().Str("shape", dd.Shape.String()).
			Str("pass", dd.Pass).Bool("direct", dd.Direct).Str("why", dd.Why).Msg("convolution pass")
	}
	return len(all)
}
