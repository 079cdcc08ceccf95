package network

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// A training iteration that a device can record and replay (a CUDA graph)
// is split in two: StageInputs, the host part (the data layers, their tops
// sent to the device, each layer.Stager's Stage), then
// ForwardBackwardStaged, every other layer's device work, which is what
// gets recorded.

// numInputs is the number of leading layers without bottoms: the data
// layers, which run on the host.
func (n *Net[T]) numInputs() int {
	k := 0
	for k < len(n.layers) && len(n.bottoms[k]) == 0 {
		k++
	}
	return k
}

// Replayable reports whether a training iteration of n can be recorded and
// replayed on its device after StageInputs, and if not, why: every layer
// after the data layers must run on the device, each Stager must be
// replayable, and no per-layer hooks may be set.
func (n *Net[T]) Replayable() (bool, string) {
	h := n.hooks
	if h.BeforeForward != nil || h.AfterForward != nil || h.BeforeBackward != nil || h.AfterBackward != nil {
		return false, "per-layer hooks are set"
	}
	if kernels.For[T](n.device).HostMemory() {
		return false, "the net computes on the CPU"
	}
	for i := n.numInputs(); i < len(n.layers); i++ {
		lp := n.graph.Layers[i]
		if n.placed[i].Fallback {
			return false, fmt.Sprintf("layer %q (%s) runs on the CPU", lp.GetName(), lp.GetType())
		}
		if st, ok := n.layers[i].(layer.Stager[T]); ok && !st.Replayable() {
			return false, fmt.Sprintf("layer %q (%s) computes a value from each batch on the host", lp.GetName(), lp.GetType())
		}
	}
	return true, ""
}

// StageInputs runs the data layers (on the host), sends their tops that
// the device reads to the device and runs every layer.Stager's Stage: the host part of an
// iteration, done before a recorded iteration replays (and before it is
// recorded).
func (n *Net[T]) StageInputs() error {
	be := kernels.For[T](n.device)
	k := n.numInputs()
	for i := 0; i < k; i++ {
		if _, err := n.ForwardLayer(i); err != nil {
			return err
		}
		// A top goes to the device if device work read it in the eager
		// iterations before: labels that a Stager reads on the host and
		// sends in its own form (SoftmaxWithLoss's classes) stay there.
		// A top left behind that the recorded work reads makes the
		// recording fail (an upload while recording), and the iteration
		// runs eagerly instead.
		for _, t := range n.tops[i] {
			if t.DataMem().HasDevice(be) {
				t.DataOn(be)
			}
		}
	}
	for i := k; i < len(n.layers); i++ {
		if st, ok := n.layers[i].(layer.Stager[T]); ok {
			if err := st.Stage(n.bottoms[i], n.tops[i]); err != nil {
				return fmt.Errorf("net %q: layer %q: forward: %w", n.graph.Name, n.graph.Layers[i].GetName(), err)
			}
		}
	}
	return nil
}

// ForwardBackwardStaged runs forward every layer after the data layers,
// then backward, after StageInputs: the device work of an iteration, which
// a device records. Call it with SetDeferLoss(true) when recording (a
// loss read waits for the device).
func (n *Net[T]) ForwardBackwardStaged() error {
	if err := n.ForwardStaged(); err != nil {
		return err
	}
	return n.Backward()
}

// ForwardStaged runs forward every layer after the data layers, after
// StageInputs: the device work of a test pass, which a device records.
// Call it with SetDeferLoss(true) when recording.
func (n *Net[T]) ForwardStaged() error {
	for i := n.numInputs(); i < len(n.layers); i++ {
		if _, err := n.ForwardLayer(i); err != nil {
			return err
		}
	}
	return nil
}

// TopsDeviceWritten records that a replay wrote the tops of every layer
// after the data layers on the device (a replay runs no Forward, whose
// accessors would have recorded it), so that a host read of one, the loss
// above all, downloads what the replay computed rather than returning the
// host copy of an earlier pass.
func (n *Net[T]) TopsDeviceWritten() {
	be := kernels.For[T](n.device)
	for i := n.numInputs(); i < len(n.layers); i++ {
		for _, t := range n.tops[i] {
			t.DataMem().DeviceWritten(be)
		}
	}
}

// Unstage forgets what StageInputs staged, after a replay (which runs no
// Forward to take it).
func (n *Net[T]) Unstage() {
	for _, l := range n.layers {
		if st, ok := l.(layer.Stager[T]); ok {
			st.Unstage()
		}
	}
}
