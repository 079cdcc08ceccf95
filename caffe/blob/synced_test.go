package blob

import (
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
)

// fakeBuf is device memory that lives in a separate slice.
type fakeBuf struct{ s []float32 }

func (b *fakeBuf) Len() int { return len(b.s) }
func (b *fakeBuf) Free()    {}

// fakeMem counts transfers between the host and its buffers.
type fakeMem struct{ up, down int }

func (m *fakeMem) HostMemory() bool { return false }
func (m *fakeMem) Alloc(n int) kernels.Vec[float32] {
	return kernels.DeviceVec[float32](&fakeBuf{make([]float32, n)}, 0, n)
}
func (m *fakeMem) AllocInts(n int) kernels.IntVec { return kernels.IntVec{} }
func (m *fakeMem) Upload(dst kernels.Vec[float32], src []float32) {
	m.up++
	copy(dev(dst), src)
}
func (m *fakeMem) UploadInts(kernels.IntVec, []int32) {}
func (m *fakeMem) Download(dst []float32, src kernels.Vec[float32]) {
	m.down++
	copy(dst, dev(src))
}

func dev(v kernels.Vec[float32]) []float32 {
	b, off := v.Device()
	return b.(*fakeBuf).s[off : off+v.Len()]
}

// A read never makes the other copy stale; a host read after a device write
// copies once; a device read after a host write uploads once.
func TestSyncedHeads(t *testing.T) {
	m := &fakeMem{}
	b := New[float32](2, 3)
	if h := b.DataMem().Head(); h != Uninitialized {
		t.Fatalf("new blob head %v, want uninitialized", h)
	}
	host := b.MutableHostData()
	host[4] = 7
	v := b.DataOn(m)
	if m.up != 1 || dev(v)[4] != 7 || b.DataMem().Head() != InSync {
		t.Fatalf("device read after host write: %d uploads, value %v, head %v; want 1, 7, synced", m.up, dev(v)[4], b.DataMem().Head())
	}
	b.DataOn(m)
	b.HostData()
	if m.up != 1 || m.down != 0 {
		t.Fatalf("reads of a synced blob copied (%d up, %d down)", m.up, m.down)
	}
	w := b.MutableDataOn(m)
	dev(w)[0] = 3
	if b.DataMem().Head() != AtDevice {
		t.Fatalf("head after device write %v, want device", b.DataMem().Head())
	}
	if got := b.HostData()[0]; got != 3 || m.down != 1 {
		t.Fatalf("host read after device write: value %v after %d downloads, want 3 after 1", got, m.down)
	}
	b.HostData()
	if m.down != 1 {
		t.Fatalf("second host read downloaded again (%d downloads)", m.down)
	}
	// A diff that a device writes first needs no upload.
	d := b.MutableDiffOn(m)
	dev(d)[1] = 5
	if m.up != 1 {
		t.Fatalf("device write of an uninitialized diff uploaded (%d uploads)", m.up)
	}
	if got := b.Diff()[1]; got != 5 {
		t.Fatalf("diff on host %v, want 5", got)
	}
	// Blobs sharing data share the sync state.
	c := New[float32](6)
	if err := c.ShareData(b); err != nil {
		t.Fatal(err)
	}
	dev(b.MutableDataOn(m))[2] = 9
	if got := c.HostData()[2]; got != 9 {
		t.Fatalf("shared blob reads %v, want 9", got)
	}
}

// On a host-memory backend the Vecs are the host storage itself.
func TestHostMemoryVec(t *testing.T) {
	b := New[float64](4)
	b.Data()[3] = 2
	if got := b.DataOn(hostMem{}).Host()[3]; got != 2 {
		t.Fatalf("host vec %v, want 2", got)
	}
	b.MutableDiffOn(hostMem{}).Host()[0] = 1
	if b.HostDiff()[0] != 1 {
		t.Fatal("host diff vec is not the blob's storage")
	}
}

type hostMem struct{}

func (hostMem) HostMemory() bool                         { return true }
func (hostMem) Alloc(n int) kernels.Vec[float64]         { return kernels.HostVec(make([]float64, n)) }
func (hostMem) AllocInts(n int) kernels.IntVec           { return kernels.HostInts(make([]int32, n)) }
func (hostMem) Upload(kernels.Vec[float64], []float64)   {}
func (hostMem) Download([]float64, kernels.Vec[float64]) {}
func (hostMem) UploadInts(kernels.IntVec, []int32)       {}

// UseDevice moves a memory's device copy into a window of a larger buffer,
// keeping the values whichever side was current, and fixes it there.
func TestSyncedUseDevice(t *testing.T) {
	m := &fakeMem{}
	flat := m.Alloc(10)
	// A device copy already current: its values come home, then go up into
	// the window.
	a := New[float32](4)
	copy(dev(a.MutableDataOn(m)), []float32{1, 2, 3, 4})
	a.DataMem().UseDevice(m, flat.Slice(2, 6))
	if h := a.DataMem().Head(); h != AtHost {
		t.Fatalf("head after UseDevice %v, want host", h)
	}
	v := a.DataOn(m)
	fbuf, _ := flat.Device()
	if buf, off := v.Device(); buf != fbuf || off != 2 {
		t.Fatalf("device copy at offset %d, want the window at 2", off)
	}
	if got := dev(flat)[2:6]; got[0] != 1 || got[3] != 4 {
		t.Fatalf("window holds %v, want 1 2 3 4", got)
	}
	// Device writes land in the window; host reads see them.
	dev(a.MutableDataOn(m))[1] = 9
	if dev(flat)[3] != 9 || a.HostData()[1] != 9 {
		t.Fatalf("device write not seen: flat %v, host %v", dev(flat), a.HostData())
	}
	// A host-current memory (no device copy yet) goes up into its window.
	b := New[float32](3)
	copy(b.MutableHostData(), []float32{5, 6, 7})
	b.DataMem().UseDevice(m, flat.Slice(6, 9))
	b.DataOn(m)
	if got := dev(flat)[6:9]; got[0] != 5 || got[2] != 7 {
		t.Fatalf("window holds %v, want 5 6 7", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("growing a fixed device window did not panic")
		}
	}()
	b.DataMem().On(m, 4)
}
