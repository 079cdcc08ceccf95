package blob

import "github.com/gocaffe/gocaffe/kernels"

// Head says which copy of a Synced memory is current.
type Head uint8

const (
	// Uninitialized: no copy exists yet (reads see zeros).
	Uninitialized Head = iota
	// AtHost: the host copy is current, the device copy stale or absent.
	AtHost
	// AtDevice: the device copy is current, the host copy stale.
	AtDevice
	// InSync: both copies hold the same values.
	InSync
)

func (h Head) String() string {
	switch h {
	case AtHost:
		return "host"
	case AtDevice:
		return "device"
	case InSync:
		return "synced"
	}
	return "uninitialized"
}

// Synced is one array with a host copy and, for a device backend, a device
// copy, kept coherent as Caffe's SyncedMemory keeps it: reading a side
// that is behind copies once, writing a side makes the other stale. With a
// backend whose memory is the host (the CPU), there is only the host copy.
// Blobs that share data (ShareData) share one Synced.
type Synced[T Float] struct {
	host  []T
	dev   kernels.Vec[T]
	mem   kernels.Memory[T] // the device the device copy lives on
	head  Head
	fixed bool // host storage is a window of a larger buffer: never reallocate
	// devFixed: the device copy is a window of a larger device buffer
	// (UseDevice): never reallocated on that device.
	devFixed bool
}

func (s *Synced[T]) allocated() bool { return s.host != nil || s.mem != nil }

// Head returns which copy is current.
func (s *Synced[T]) Head() Head { return s.head }

// reserve makes the host storage hold at least n elements (keeping values).
func (s *Synced[T]) reserve(n int) {
	if cap(s.host) >= n {
		if len(s.host) < n {
			s.host = s.host[:n]
		}
		return
	}
	if s.fixed {
		panic("blob: a parameter in the net's contiguous buffer cannot grow") // layers never reshape their params
	}
	nd := make([]T, n)
	copy(nd, s.host)
	s.host = nd
}

// toHost makes the host copy current.
func (s *Synced[T]) toHost(n int) {
	s.reserve(n)
	if s.head == AtDevice {
		s.mem.Download(s.host[:min(n, s.dev.Len())], s.dev.Slice(0, min(n, s.dev.Len())))
		s.head = InSync
	}
	if s.head == Uninitialized {
		s.head = AtHost
	}
}

// Host returns n elements on the host for reading.
func (s *Synced[T]) Host(n int) []T {
	s.toHost(n)
	return s.host[:n]
}

// MutableHost returns n elements on the host for writing.
func (s *Synced[T]) MutableHost(n int) []T {
	s.toHost(n)
	s.head = AtHost
	return s.host[:n]
}

// toDevice makes the copy in m's memory current.
func (s *Synced[T]) toDevice(m kernels.Memory[T], n int) {
	if s.mem != m || s.dev.Len() < n {
		if s.devFixed && s.mem == m {
			panic("blob: a parameter in the net's contiguous device buffer cannot grow") // layers never reshape their params
		}
		// A first device copy, another device or a larger array: bring
		// the values home, then upload them to a fresh device copy.
		if s.head == AtDevice {
			s.toHost(n)
		}
		s.mem, s.dev, s.devFixed = m, m.Alloc(max(n, cap(s.host))), false
		if s.head == InSync {
			s.head = AtHost
		}
	}
	switch s.head {
	case AtHost:
		s.reserve(n)
		m.Upload(s.dev.Slice(0, n), s.host[:n])
		s.head = InSync
	case Uninitialized:
		s.head = AtDevice // Alloc zeroes
	}
}

// HasDevice reports whether s has a copy in m's device memory (current or
// not): whether device work has read or written it there.
func (s *Synced[T]) HasDevice(m kernels.Memory[T]) bool {
	return !m.HostMemory() && s.mem == m && s.dev.Len() > 0
}

// DeviceWritten records that device work wrote s's copy in m's memory
// behind the accessors' back (a replayed recording), so a host read
// downloads it. It copies nothing: the device copy must exist.
func (s *Synced[T]) DeviceWritten(m kernels.Memory[T]) {
	if s.HasDevice(m) {
		s.head = AtDevice
	}
}

// On returns n elements in m's memory for reading.
func (s *Synced[T]) On(m kernels.Memory[T], n int) kernels.Vec[T] {
	if m.HostMemory() {
		return kernels.HostVec(s.Host(n))
	}
	s.toDevice(m, n)
	return s.dev.Slice(0, n)
}

// MutableOn returns n elements in m's memory for writing.
func (s *Synced[T]) MutableOn(m kernels.Memory[T], n int) kernels.Vec[T] {
	if m.HostMemory() {
		return kernels.HostVec(s.MutableHost(n))
	}
	s.toDevice(m, n)
	s.head = AtDevice
	return s.dev.Slice(0, n)
}

// UseHost makes the first len(buf) elements of buf this memory's host
// storage, copying the current values in, and fixes it there (the net's
// contiguous parameter and gradient buffers).
func (s *Synced[T]) UseHost(buf []T) {
	s.toHost(len(buf))
	copy(buf, s.host)
	s.host, s.fixed = buf, true
}

// UseDevice makes v, in m's memory, this memory's device storage and fixes
// it there (the net's contiguous parameter and gradient buffers on a
// device). The current values are kept: a device copy elsewhere is brought
// to the host first (and its memory freed), and they go up into v at the
// next device access.
func (s *Synced[T]) UseDevice(m kernels.Memory[T], v kernels.Vec[T]) {
	if s.head == AtDevice {
		s.toHost(v.Len())
	}
	if s.mem != nil && !s.devFixed {
		if buf, _ := s.dev.Device(); buf != nil {
			buf.Free()
		}
	}
	if s.head == InSync {
		s.head = AtHost
	}
	s.mem, s.dev, s.devFixed = m, v, true
}
