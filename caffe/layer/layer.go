// Package layer defines the contract every Caffe layer implements and the
// registry that maps a prototxt `type:` string to a constructor.
package layer

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

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

// EngineCaffe is the engine of every layer type's portable implementation
// (Caffe's CAFFE engine): it runs on the CPU, and on any device when it
// computes only through kernels.Backend (see Registry.SetPortable).
const EngineCaffe = "CAFFE"

type entry struct {
	f32 Constructor[float32]
	f64 Constructor[float64]
}

// Registry maps layer type names and engines to constructors for both
// precisions, as Caffe's layer factory keys its creators by type and
// engine (the engine fields of convolution_param, pooling_param, …).
type Registry struct {
	m        map[string]map[string]entry // type → engine → constructors
	portable map[string]bool             // types whose CAFFE implementation runs on any device
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{m: map[string]map[string]entry{}, portable: map[string]bool{}}
}

// Register adds a layer type's CAFFE implementation, which runs on the
// host (a net on another device syncs its blobs around it); registering a
// name twice is an error.
func (r *Registry) Register(typ string, f32 Constructor[float32], f64 Constructor[float64]) error {
	return r.RegisterEngine(typ, EngineCaffe, f32, f64)
}

// RegisterEngine adds an implementation of typ for engine: EngineCaffe, or
// a device's engine (kernels.Device.Engine, such as "CUDNN"), which runs
// on nets of that device.
func (r *Registry) RegisterEngine(typ, engine string, f32 Constructor[float32], f64 Constructor[float64]) error {
	if _, ok := r.m[typ][engine]; ok {
		return fmt.Errorf("layer type %q engine %s registered twice", typ, engine)
	}
	if r.m[typ] == nil {
		r.m[typ] = map[string]entry{}
	}
	r.m[typ][engine] = entry{f32, f64}
	return nil
}

// SetPortable marks types whose CAFFE implementation reaches memory only
// through the blobs' device accessors and math only through the layer's
// kernels.Backend: on a net of any device it runs on that device.
func (r *Registry) SetPortable(types ...string) error {
	for _, t := range types {
		if _, ok := r.m[t][EngineCaffe]; !ok {
			return fmt.Errorf("layer type %q: no CAFFE implementation to mark portable", t)
		}
		r.portable[t] = true
	}
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

// Placement says which implementation of a layer runs, and on which device.
type Placement struct {
	// Engine is the implementation's engine (EngineCaffe, or a device's).
	Engine string
	// Device is where it computes: the net's device, or the CPU for a
	// host implementation (the fallback) on a net of another device.
	Device kernels.Device
	// Fallback is set when the net's device is not the CPU and the layer
	// runs on the CPU because its type has no implementation for the device.
	Fallback bool
}

// RequestedEngine returns the engine a layer's definition asks for in its
// type's parameter message (convolution_param.engine, …), or "" for
// DEFAULT or none.
func RequestedEngine(lp *caffepb.LayerParameter) string {
	var engine string
	lp.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
			return true
		}
		m := v.Message()
		ef := m.Descriptor().Fields().ByName("engine")
		if ef == nil || ef.Kind() != protoreflect.EnumKind || !m.Has(ef) {
			return true
		}
		if ev := ef.Enum().Values().ByNumber(m.Get(ef).Enum()); ev != nil && ev.Name() != "DEFAULT" {
			engine = string(ev.Name())
		}
		return engine == ""
	})
	return engine
}

// Place decides which implementation of ctx.Param's type runs and where:
// the engine the layer asks for, else the device's engine, where the
// registry has one and the device is not the CPU; otherwise the CAFFE
// implementation, on the device if its type is portable, else on the CPU.
func (r *Registry) Place(ctx Context) (Placement, error) {
	typ := ctx.Param.GetType()
	engines, ok := r.m[typ]
	if !ok {
		return Placement{}, &UnknownTypeError{Layer: ctx.Param.GetName(), Type: typ, Known: r.Types()}
	}
	dev := ctx.DeviceOrCPU()
	onCPU := dev.Name() == cpu.Device.Name()
	if !onCPU {
		for _, e := range []string{RequestedEngine(ctx.Param), dev.Engine()} {
			if _, ok := engines[e]; ok && e != "" && e != EngineCaffe {
				return Placement{Engine: e, Device: dev}, nil
			}
		}
	}
	if _, ok := engines[EngineCaffe]; !ok {
		return Placement{}, fmt.Errorf("layer %q: type %s has no CAFFE implementation and none for device %s", ctx.Param.GetName(), typ, dev.Name())
	}
	if onCPU || r.portable[typ] {
		return Placement{Engine: EngineCaffe, Device: dev}, nil
	}
	return Placement{Engine: EngineCaffe, Device: cpu.Device, Fallback: true}, nil
}

// New builds a layer of ctx.Param's type computing in T.
func New[T blob.Float](r *Registry, ctx Context) (Layer[T], error) {
	l, _, err := Build[T](r, ctx)
	return l, err
}

// Build builds a layer of ctx.Param's type computing in T, placed by
// Place: the constructor gets the placement's device in its Context.
func Build[T blob.Float](r *Registry, ctx Context) (Layer[T], Placement, error) {
	pl, err := r.Place(ctx)
	if err != nil {
		return nil, pl, err
	}
	typ := ctx.Param.GetType()
	e := r.m[typ][pl.Engine]
	ctx.Device = pl.Device
	var l any
	switch any(*new(T)).(type) {
	case float32:
		l, err = e.f32(ctx)
	case float64:
		l, err = e.f64(ctx)
	}
	if err != nil {
		return nil, pl, fmt.Errorf("layer %q (%s): %w", ctx.Param.GetName(), typ, err)
	}
	return l.(Layer[T]), pl, nil
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

// Stager is implemented by layers whose Forward on a device begins with
// host work on inputs that the data layers write on the host
// (SoftmaxWithLoss checks the labels and uploads them as classes). Stage
// does that part alone, and the next Forward skips it. A net whose
// training iteration is recorded and replayed on its device (a CUDA graph)
// runs Stage before each replay, and Unstage after it, since a replay runs
// no Forward.
type Stager[T blob.Float] interface {
	Stage(bottom, top []*blob.Blob[T]) error
	Unstage()
	// Replayable reports whether the device work of Forward and Backward
	// depends on a batch only through what Stage sent (false when it also
	// takes values computed from the batch on the host, such as a count of
	// labelled positions).
	Replayable() bool
}
