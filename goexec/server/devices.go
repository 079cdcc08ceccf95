package server

import (
	kcpu "github.com/gocaffe/gocaffe/kernels/cpu"

	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// DetectDevices lists the CPUs and NVIDIA GPUs visible under procRoot
// (normally /proc). GPUs are read from the NVIDIA driver's
// driver/nvidia/gpus/*/information files, so no CUDA library is needed; they
// are ordered by PCI bus id and filtered by CUDA_VISIBLE_DEVICES (read through
// lookupEnv, normally os.LookupEnv) the way CUDA does: a comma list of ordinals or UUID prefixes, ending
// at the first entry that matches nothing.
func DetectDevices(procRoot string, lookupEnv func(string) (string, bool)) (*pb.DevicesResponse, error) {
	cpu, err := detectCPU(procRoot)
	if err != nil {
		return nil, err
	}
	gpus, driver, err := detectNvidia(procRoot)
	if err != nil {
		return nil, err
	}
	if v, ok := lookupEnv("CUDA_VISIBLE_DEVICES"); ok {
		gpus = filterVisible(gpus, v)
	}
	for i, g := range gpus {
		g.Index = int32(i)
	}
	return &pb.DevicesResponse{Cpu: cpu, Gpus: gpus, GpuDriver: driver}, nil
}

func detectCPU(procRoot string) (*pb.CPU, error) {
	cpu := &pb.CPU{UsableCores: int32(min(runtime.NumCPU(), runtime.GOMAXPROCS(0))), Kernels: kcpu.KernelLevel().String()}
	f, err := os.Open(filepath.Join(procRoot, "cpuinfo"))
	if errors.Is(err, fs.ErrNotExist) {
		cpu.LogicalCores = int32(runtime.NumCPU())
		return cpu, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cpuinfo: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "processor":
			cpu.LogicalCores++
		case "model name":
			if cpu.Model == "" {
				cpu.Model = strings.TrimSpace(val)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cpuinfo %s: %w", f.Name(), err)
	}
	if cpu.LogicalCores == 0 {
		cpu.LogicalCores = int32(runtime.NumCPU())
	}
	return cpu, nil
}

func detectNvidia(procRoot string) ([]*pb.GPU, string, error) {
	base := filepath.Join(procRoot, "driver", "nvidia")
	entries, err := os.ReadDir(filepath.Join(base, "gpus"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("nvidia gpus: %w", err)
	}
	var gpus []*pb.GPU
	for _, e := range entries {
		path := filepath.Join(base, "gpus", e.Name(), "information")
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("nvidia gpu %s: %w", path, err)
		}
		g := &pb.GPU{Vendor: "nvidia", BusId: e.Name()}
		for _, line := range strings.Split(string(data), "\n") {
			key, val, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			val = strings.TrimSpace(val)
			switch strings.TrimSpace(key) {
			case "Model":
				g.Name = val
			case "GPU UUID":
				g.Uuid = val
			case "Bus Location":
				g.BusId = val
			}
		}
		gpus = append(gpus, g)
	}
	sort.Slice(gpus, func(i, j int) bool { return gpus[i].BusId < gpus[j].BusId })
	driver := ""
	if data, err := os.ReadFile(filepath.Join(base, "version")); err == nil {
		driver, _, _ = strings.Cut(string(data), "\n")
		driver = strings.TrimSpace(driver)
	}
	return gpus, driver, nil
}

// filterVisible applies a CUDA_VISIBLE_DEVICES value to gpus.
func filterVisible(gpus []*pb.GPU, spec string) []*pb.GPU {
	var out []*pb.GPU
	used := map[int]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		idx := -1
		if n, err := strconv.Atoi(item); err == nil {
			if n >= 0 && n < len(gpus) {
				idx = n
			}
		} else if item != "" {
			for i, g := range gpus {
				if g.Uuid != "" && strings.HasPrefix(g.Uuid, item) {
					idx = i
					break
				}
			}
		}
		if idx < 0 || used[idx] {
			break
		}
		used[idx] = true
		out = append(out, gpus[idx])
	}
	return out
}
