package server

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeProc writes a /proc-shaped tree with the given cpuinfo and NVIDIA GPUs
// (bus id → information file body).
func fakeProc(t *testing.T, cpuinfo string, gpus map[string]string, driver string) string {
	t.Helper()
	root := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cpuinfo", cpuinfo)
	for bus, info := range gpus {
		write(filepath.Join("driver/nvidia/gpus", bus, "information"), info)
	}
	if driver != "" {
		write("driver/nvidia/version", driver)
	}
	return root
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const cpuinfo4 = `processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Test CPU @ 2.00GHz

processor	: 1
model name	: Intel(R) Xeon(R) Test CPU @ 2.00GHz

processor	: 2
model name	: Intel(R) Xeon(R) Test CPU @ 2.00GHz

processor	: 3
model name	: Intel(R) Xeon(R) Test CPU @ 2.00GHz
`

func gpuInfo(model, uuid, bus string) string {
	return "Model: \t\t " + model + "\nIRQ:   \t\t 42\nGPU UUID: \t " + uuid + "\nBus Location: \t " + bus + "\n"
}

func TestDetectDevicesCPUOnly(t *testing.T) {
	root := fakeProc(t, cpuinfo4, nil, "")
	d, err := DetectDevices(root, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.Cpu.LogicalCores != 4 || d.Cpu.Model != "Intel(R) Xeon(R) Test CPU @ 2.00GHz" {
		t.Errorf("CPU = %+v", d.Cpu)
	}
	if len(d.Gpus) != 0 || d.GpuDriver != "" {
		t.Errorf("GPUs = %v driver %q, want none", d.Gpus, d.GpuDriver)
	}
}

func TestDetectDevicesNvidiaOrderAndVisibility(t *testing.T) {
	root := fakeProc(t, cpuinfo4, map[string]string{
		"0000:c1:00.0": gpuInfo("NVIDIA H100 80GB HBM3", "GPU-bbbb-2222", "0000:c1:00.0"),
		"0000:3b:00.0": gpuInfo("NVIDIA H100 80GB HBM3", "GPU-aaaa-1111", "0000:3b:00.0"),
		"0000:5e:00.0": gpuInfo("NVIDIA A100-SXM4-40GB", "GPU-cccc-3333", "0000:5e:00.0"),
	}, "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06\nGCC version: gcc\n")
	uuids := func(m map[string]string) []string {
		d, err := DetectDevices(root, env(m))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i, g := range d.Gpus {
			if int(g.Index) != i {
				t.Errorf("GPU %d has index %d", i, g.Index)
			}
			out = append(out, g.Uuid)
		}
		return out
	}
	d, err := DetectDevices(root, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d.GpuDriver != "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06" {
		t.Errorf("driver = %q", d.GpuDriver)
	}
	if g := d.Gpus[1]; g.Name != "NVIDIA A100-SXM4-40GB" || g.BusId != "0000:5e:00.0" || g.Vendor != "nvidia" {
		t.Errorf("GPU 1 = %+v", g)
	}
	cases := []struct {
		env  map[string]string
		want []string
	}{
		{nil, []string{"GPU-aaaa-1111", "GPU-cccc-3333", "GPU-bbbb-2222"}},
		{map[string]string{"CUDA_VISIBLE_DEVICES": "2,0"}, []string{"GPU-bbbb-2222", "GPU-aaaa-1111"}},
		{map[string]string{"CUDA_VISIBLE_DEVICES": "GPU-cccc"}, []string{"GPU-cccc-3333"}},
		{map[string]string{"CUDA_VISIBLE_DEVICES": "1,7,0"}, []string{"GPU-cccc-3333"}}, // stops at the invalid 7
		{map[string]string{"CUDA_VISIBLE_DEVICES": ""}, nil},
		{map[string]string{"CUDA_VISIBLE_DEVICES": "-1"}, nil},
	}
	for _, c := range cases {
		if got := uuids(c.env); !reflect.DeepEqual(got, c.want) {
			t.Errorf("CUDA_VISIBLE_DEVICES=%q: GPUs %v, want %v", c.env["CUDA_VISIBLE_DEVICES"], got, c.want)
		}
	}
}

func TestDetectDevicesUnreadableGPUInfoIsAnError(t *testing.T) {
	root := fakeProc(t, cpuinfo4, nil, "")
	if err := os.MkdirAll(filepath.Join(root, "driver/nvidia/gpus/0000:01:00.0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := DetectDevices(root, env(nil)); err == nil {
		t.Error("missing information file: no error")
	}
}

// TestDetectDevicesRealProc reads this machine's /proc. On a machine with the
// NVIDIA driver it checks the GPUs against `nvidia-smi -L` when that exists.
func TestDetectDevicesRealProc(t *testing.T) {
	d, err := DetectDevices("/proc", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if d.Cpu.LogicalCores < 1 {
		t.Errorf("CPU = %+v", d.Cpu)
	}
	t.Logf("cpu: %d logical, %d usable, %q", d.Cpu.LogicalCores, d.Cpu.UsableCores, d.Cpu.Model)
	for _, g := range d.Gpus {
		t.Logf("gpu %d: %q %s %s", g.Index, g.Name, g.Uuid, g.BusId)
		if g.Name == "" || g.BusId == "" {
			t.Errorf("GPU %d lacks a name or bus id: %+v", g.Index, g)
		}
	}
	if _, err := os.Stat("/proc/driver/nvidia/gpus"); err == nil && len(d.Gpus) == 0 {
		t.Error("/proc/driver/nvidia/gpus exists but no GPU was found")
	}
	if out, err := exec.Command("nvidia-smi", "-L").Output(); err == nil {
		var uuids []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if i := strings.Index(line, "UUID: "); i >= 0 {
				uuids = append(uuids, strings.TrimSuffix(line[i+len("UUID: "):], ")"))
			}
		}
		if len(uuids) != len(d.Gpus) {
			t.Errorf("nvidia-smi lists %d GPUs, DetectDevices %d", len(uuids), len(d.Gpus))
		}
		found := map[string]bool{}
		for _, g := range d.Gpus {
			found[g.Uuid] = true
		}
		for _, u := range uuids {
			if !found[u] {
				t.Errorf("nvidia-smi GPU %s not found by DetectDevices", u)
			}
		}
	}
}
