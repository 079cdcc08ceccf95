// Package layer defines the contract every Caffe layer implements and the
// registry that maps a prototxt `type:` string to a constructor.
package layer

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/cpu"
)

// Layer is one Caffe layer computing in T. The net calls Setup once, then
// Reshape whenever input shapes may have changed, then Forward and Backward.
//
// Conventions shared by all layers (as in Caffe):
//   - Backward overwrites bottom diffs, but ADDS into the diffs of its own
//     parameter blobs (the net zeroes them before each iteration), so shared
//     parameters and iter_size accumulation work.
//   - Forward must not assume top storage is zeroed.
//   - Layers return errors for bad data (for example a label out of range),
//     never panic.
type Layer[T blob.Float] interface {
	// Setup checks the parameters against the bottoms and creates the
	// layer's blobs (weights, filled with the configured fillers).
	Setup(bottom, top []*blob.Blob[T]) error
	// Reshape sets top shapes (and internal buffers) from bottom shapes.
	Reshape(bottom, top []*blob.Blob[T]) error
	// Forward computes tops from bottoms.
	Forward(bottom, top []*blob.Blob[T]) error
	// Backward computes bottom diffs (where propagateDown[i]) and parameter
	// diffs from top diffs.
	Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error
	// Blobs returns the layer's persistent blobs in .caffemodel order
	// (weights, bias, or BatchNorm's mean/variance/factor).
	Blobs() []*blob.Blob[T]
}

// LossLayer marks layers whose first top is a loss with a default
// loss_weight of 1 (Caffe's LossLayer).
type LossLayer interface{ IsLoss() }

// ForceBackwardGate is implemented by layers that must not backpropagate to
// some bottoms even under force_backward (labels of a loss, for example).
type ForceBackwardGate interface {
	AllowForceBackward(bottomIndex int) bool
}

// BlobCounts is implemented by layers that declare the number of bottoms
// and tops they take; -1 means no limit. The net checks it before Setup and
// reports a mismatch with the layer's name.
type BlobCounts interface {
	// BlobCounts returns minimum and maximum bottoms, then tops.
	BlobCounts() (minBottom, maxBottom, minTop, maxTop int)
}

// Phase says whether the net trains or tests; some layers behave differently.
type Phase = caffepb.Phase

// Context carries what a constructor needs to build one layer.
type Context struct {
	// Param is the layer's definition from the net prototxt.
	Param *caffepb.LayerParameter
	// Phase is TRAIN or TEST.
	Phase Phase
	// Rand is the layer's own random source (fillers, dropout), derived
	// from the solver's random_seed so runs repeat.
	Rand *rand.Rand
	// Device is where the layer computes (nil: the CPU). A layer reaches
	// its math through Backend[T](ctx), never through kernels/cpu.
	Device kernels.Device
}

// Backend returns the backend of ctx's device computing in T.
func Backend[T blob.Float](ctx Context) kernels.Backend[T] {
	return kernels.For[T](ctx.DeviceOrCPU())
}

// HostBackend returns the CPU backend computing in T, for layer code that
// runs on the host whatever the net's device (the CPU fallback).
func HostBackend[T blob.Float]() kernels.Backend[T] { return kernels.For[T](cpu.Device) }

// DeviceOrCPU returns ctx.Device, or the CPU when it is unset.
func (c Context) DeviceOrCPU() kernels.Device {
	if c.Device == nil {
		return cpu.Device
	}
	return c.Device
}

// Constructor builds a layer from its definition; it checks only what it can
// without bottom shapes (Setup checks the rest).
type Constructor[T blob.Float] func(ctx Context) (Layer[T], error)

type entry struct {
	f32 Constructor[float32]
	f64 Constructor[float64]
}

// Registry maps layer type names to constructors for both precisions.
type Registry struct{ m map[string]entry }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]entry{}} }

// Register adds a layer type; registering a name twice is an error.
func (r *Registry) Register(typ string, f32 Constructor[float32], f64 Constructor[float64]) error {
	if _, ok := r.m[typ]; ok {
		return fmt.Errorf("layer type %q registered twice", typ)
	}
	r.m[typ] = entry{f32, f64}
	return nil
}

// Types returns the registered type names, sorted.
func (r *Registry) Types() []string {
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Has reports whether typ is registered.
func (r *Registry) Has(typ string) bool { _, ok := r.m[typ]; return ok }

// UnknownTypeError names a layer type the registry lacks and lists the known ones.
type UnknownTypeError struct {
	Layer, Type string
	Known       []string
}

func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("layer %q: unknown layer type %q (known types: %s)", e.Layer, e.Type, strings.Join(e.Known, ", "))
}

// New builds a layer of ctx.Param's type computing in T.
func New[T blob.Float](r *Registry, ctx Context) (Layer[T], error) {
	typ := ctx.Param.GetType()
	e, ok := r.m[typ]
	if !ok {
		return nil, &UnknownTypeError{Layer: ctx.Param.GetName(), Type: typ, Known: r.Types()}
	}
	var l any
	var err error
	switch any(*new(T)).(type) {
	case float32:
		l, err = e.f32(ctx)
	case float64:
		l, err = e.f64(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("layer %q (%s): %w", ctx.Param.GetName(), typ, err)
	}
	return l.(Layer[T]), nil
}

// BatchSource fills a data layer's tops (already shaped by the layer:
// data first, then label where the layer has one) with the next batch.
// Sources apply the layer's transform_param; they live outside this package.
type BatchSource[T blob.Float] interface {
	Next(top []*blob.Blob[T]) error
}

// Fed is implemented by data layers (MemoryData, CoSData) whose batches come
// from a BatchSource that the net or the training loop attaches.
type Fed[T blob.Float] interface {
	SetSource(src BatchSource[T])
}
