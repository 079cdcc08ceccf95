package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/cpu"
)

// GPU selection. goexec comes in two builds: the default one (CPU only,
// no cgo) and goexec-cuda (build tag `cuda`), which links the NVIDIA
// driver's libcuda.so.1 and so cannot even start on a machine without it.
// A request for a GPU (solver_mode: GPU, serve -gpus) reaching the CPU
// build re-executes goexec-cuda from the same directory if that one
// starts and finds the GPU (`goexec-cuda cuda-probe`); otherwise, and in
// goexec-cuda when the GPU cannot be opened, goexec computes on the CPU
// after one warning line that says why.

// cudaSiblingName is the CUDA build's file name beside the CPU build.
const cudaSiblingName = "goexec-cuda"

// chooseDevice returns the device a net computes on: the CPU unless
// wantGPU, else GPU ordinal, or the CPU with a warning when that fails.
func chooseDevice(wantGPU bool, ordinal int) (dev kernels.Device, warning string) {
	if !wantGPU {
		return cpu.Device, ""
	}
	d, err := openGPU(ordinal)
	if err != nil {
		return cpu.Device, fmt.Sprintf("GPU %d requested but not usable, computing on the CPU: %v", ordinal, err)
	}
	return d, ""
}

// execCUDA replaces this process with goexec-cuda (same arguments) when
// this is the CPU build, goexec-cuda lies beside it, and it can open GPU
// ordinal. It returns only when it does not exec, with the reason.
func execCUDA(ordinal int) error {
	if cudaBuild {
		return errors.New("already the CUDA build")
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("this goexec is the CPU build and cannot find its own path: %w", err)
	}
	return execCUDAFrom(self, ordinal)
}

// execCUDAFrom is execCUDA for the goexec at path self.
func execCUDAFrom(self string, ordinal int) error {
	sib := filepath.Join(filepath.Dir(self), cudaSiblingName)
	if _, err := os.Stat(sib); err != nil {
		return fmt.Errorf("this goexec is the CPU build and %s is not beside it (%s)", cudaSiblingName, filepath.Dir(self))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sib, "cuda-probe", "-device", fmt.Sprint(ordinal)).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return fmt.Errorf("%s cannot use GPU %d: %v: %s", cudaSiblingName, ordinal, err, msg)
	}
	args := append([]string{sib}, os.Args[1:]...)
	if err := syscall.Exec(sib, args, os.Environ()); err != nil {
		return fmt.Errorf("starting %s: %w", sib, err)
	}
	return nil // not reached
}

// trainDevice picks where `goexec train` computes: the GPU when the solver
// says solver_mode: GPU (device_id, or -gpu) and one is usable, else the
// CPU, with one warning line when a GPU was asked for. In the CPU build a
// usable goexec-cuda beside it takes over the process instead.
func trainDevice(sp *caffepb.SolverParameter, gpuFlag int, log zerolog.Logger) kernels.Device {
	wantGPU := sp.GetSolverMode() == caffepb.SolverParameter_GPU
	ordinal := int(sp.GetDeviceId())
	if gpuFlag >= 0 {
		wantGPU, ordinal = true, gpuFlag
	}
	if !wantGPU {
		return cpuTrainDevice(log)
	}
	if !cudaBuild {
		err := execCUDA(ordinal) // returns only when it did not exec
		log.Warn().Msgf("solver_mode GPU (device %d): training on the CPU: %v", ordinal, err)
		return cpuTrainDevice(log)
	}
	dev, warning := chooseDevice(true, ordinal)
	if warning != "" {
		log.Warn().Msg(warning)
	} else {
		log.Info().Str("device", dev.Name()).Msg("training on the GPU")
		log.Info().Msg(deviceGEMM(dev))
	}
	return dev
}

// cpuTrainDevice is the CPU device of one training run: its own
// convolution route cache, each measured choice logged at debug level.
func cpuTrainDevice(log zerolog.Logger) kernels.Device {
	return cpu.NewDevice(cpu.WithLogger(log))
}

// parseGPUs reads serve's -gpus: comma-separated non-negative ordinals.
func parseGPUs(spec string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("-gpus %q: %q is not a GPU ordinal (want e.g. 0 or 0,1)", spec, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// serveGPUs handles the GPUs Spark granted the executor: the CPU build
// hands over to goexec-cuda when that can open the first one; otherwise
// one warning line says why the executor computes on the CPU.
func serveGPUs(spec string, log zerolog.Logger) {
	gpus, err := parseGPUs(spec) // checked by parseServeFlags
	if err != nil || len(gpus) == 0 {
		return
	}
	if !cudaBuild {
		err := execCUDA(gpus[0]) // returns only when it did not exec
		log.Warn().Msgf("GPU %s granted: computing on the CPU: %v", spec, err)
		return
	}
	d, err := openGPU(gpus[0])
	if err != nil {
		log.Warn().Msgf("GPU %s granted but not usable, computing on the CPU: %v", spec, err)
		return
	}
	log.Warn().Str("device", d.Name()).Msgf("GPU %s granted and usable, but distributed training (goexec serve) computes on the CPU in this version", spec)
	if c, ok := d.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}
