package solver

import (
	"context"
	"fmt"
	"slices"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/kernels"
)

// deviceScorer sums a device net's outputs and weighted loss over forward
// passes in device memory, read once at the end, so the passes queue up
// without waiting for the device (Caffe's Solver::Test sums in the net's
// own precision too). On a device that records (CUDA graphs) the first
// pass of each call runs eagerly, which brings weights the host wrote up
// to the device and allocates what a pass needs, and the others replay
// one recorded pass: the data layers run on the host (StageInputs), then
// the rest of the forward pass and the sums are one launch.
type deviceScorer[T blob.Float] struct {
	net      *network.Net[T]
	be       kernels.Backend[T]
	outs     []*blob.Blob[T]
	lossTops []*blob.Blob[T]
	weights  []float32
	total    int            // output elements
	acc, tmp kernels.Vec[T] // the outputs' sums then the loss's; one loss top's sum

	replay    bool // try recording the pass
	recording kernels.Recording
	recAt     []placement // where the recording reads the net's params
	replays   int
	whyEager  string // why passes are not replayed, once tried
}

func newDeviceScorer[T blob.Float](n *network.Net[T], replay bool) *deviceScorer[T] {
	_, rec := n.Device().(kernels.Recorder)
	return &deviceScorer[T]{net: n, be: kernels.For[T](n.Device()), replay: replay && rec}
}

// placement is where a blob's device copy is.
type placement struct {
	buf kernels.Buffer
	off int
}

// paramPlaces returns where the net's params are on the device (after an
// eager pass has put them there). A recording reads them where they were
// when it was made; the solver's first iteration moves a net's params into
// one buffer (network.Net.ParamBufferOn), after a test at iteration 0 may
// have recorded their first places.
func (d *deviceScorer[T]) paramPlaces() []placement {
	var at []placement
	for _, p := range d.net.Params() {
		buf, off := p.DataOn(d.be).Device()
		at = append(at, placement{buf, off})
	}
	return at
}

// layout takes the net's outputs and sizes the accumulators for them,
// dropping a recording made for other ones.
func (d *deviceScorer[T]) layout() {
	outs := d.net.OutputBlobs()
	total := 0
	for _, b := range outs {
		total += b.Count()
	}
	if d.acc.Len() == total+1 && len(outs) == len(d.outs) {
		return
	}
	d.release()
	d.outs, d.total = outs, total
	d.lossTops, d.weights = d.net.LossTops()
	d.acc, d.tmp = d.be.Alloc(total+1), d.be.Alloc(1)
}

// accumulate adds this pass's outputs and weighted loss to acc.
func (d *deviceScorer[T]) accumulate() {
	k := 0
	for _, b := range d.outs {
		d.be.Axpy(1, b.DataOn(d.be), d.acc.Slice(k, k+b.Count()))
		k += b.Count()
	}
	for j, t := range d.lossTops {
		d.be.SumTo(t.DataOn(d.be), d.tmp)
		d.be.Axpy(T(d.weights[j]), d.tmp, d.acc.Slice(d.total, d.total+1))
	}
}

// sums is OutputSums on the device.
func (d *deviceScorer[T]) sums(ctx context.Context, iters int) (sums []float64, loss float64, err error) {
	if iters <= 0 {
		return nil, 0, nil // as OutputSums on the host: no passes, no sums
	}
	n := d.net
	defer n.SetDeferLoss(n.DefersLoss())
	n.SetDeferLoss(true)
	for it := 0; it < iters; it++ {
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("pass %d: %w", it, err)
		}
		if it == 0 {
			if _, err := n.Forward(); err != nil {
				return nil, 0, fmt.Errorf("pass %d: %w", it, err)
			}
			d.layout()
			if d.recording != nil && !slices.Equal(d.paramPlaces(), d.recAt) {
				d.recording.Release()
				d.recording = nil
			}
			d.be.Fill(d.acc, 0)
			d.accumulate()
			continue
		}
		if err := d.replayPass(); err != nil {
			return nil, 0, fmt.Errorf("pass %d: %w", it, err)
		}
	}
	host := make([]T, d.total+1)
	d.be.Download(host, d.acc)
	sums = make([]float64, d.total)
	for k := range sums {
		sums[k] = float64(host[k])
	}
	return sums, float64(host[d.total]), nil
}

// replayPass is one pass after the first: replayed from the recording
// (made on first use) where the device records, else eager.
func (d *deviceScorer[T]) replayPass() error {
	n := d.net
	if d.replay && d.recording == nil {
		if ok, why := n.Replayable(); !ok {
			d.replay, d.whyEager = false, why
		}
	}
	if !d.replay {
		if _, err := n.Forward(); err != nil {
			return err
		}
		d.accumulate()
		return nil
	}
	if err := n.StageInputs(); err != nil {
		return err
	}
	if d.recording == nil {
		rec, err := n.Device().(kernels.Recorder).Record(func() error {
			if err := n.ForwardStaged(); err != nil {
				return err
			}
			d.accumulate()
			return nil
		})
		if err != nil {
			// Nothing recorded ran: this pass runs eagerly after its staging.
			d.replay, d.whyEager = false, err.Error()
			defer n.Unstage()
			if err := n.ForwardStaged(); err != nil {
				return err
			}
			d.accumulate()
			return nil
		}
		d.recording, d.recAt = rec, d.paramPlaces()
	}
	if err := d.recording.Replay(); err != nil {
		return err
	}
	n.TopsDeviceWritten()
	n.Unstage()
	d.replays++
	return nil
}

// release frees the accumulators and the recording.
func (d *deviceScorer[T]) release() {
	if d.recording != nil {
		d.recording.Release()
		d.recording = nil
	}
	for _, v := range []kernels.Vec[T]{d.acc, d.tmp} {
		if buf, _ := v.Device(); buf != nil {
			buf.Free()
		}
	}
	d.acc, d.tmp = kernels.Vec[T]{}, kernels.Vec[T]{}
}
