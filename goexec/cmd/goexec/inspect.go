package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	"github.com/gocaffe/gocaffe/kernels"
)

// runInspect prints a net's layers with their shapes, parameter counts and
// activation memory, and checks weights against it.
func runInspect(args []string) error { return inspect(args, os.Stdout, os.Stderr) }

type inspectFlags struct {
	netPath, phase, weights, dataShape, stages string
	batch, level                               int
}

const inspectUsage = `usage: goexec inspect NET.prototxt [flags]

Builds the net for a phase (shape inference only: nothing runs forward, and
weights are zero unless -weights loads them) and prints one row per layer: name, type, bottoms, tops with their
shapes, parameter count and activation memory (float32), then the totals.
With -weights it also checks a .caffemodel against the net.

flags:
`

func parseInspectFlags(args []string, stderr io.Writer) (inspectFlags, error) {
	var f inspectFlags
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), inspectUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.phase, "phase", "train", "net phase: train or test")
	fs.StringVar(&f.weights, "weights", "", "a .caffemodel to check against the net (and load)")
	fs.IntVar(&f.batch, "batch", 0, "batch size for every data and Input layer (default: the net's own)")
	fs.StringVar(&f.dataShape, "data-shape", "", "C,H,W of the records behind Data (database) layers, whose shapes come from the database")
	fs.StringVar(&f.stages, "stage", "", "comma-separated NetState stages")
	fs.IntVar(&f.level, "level", 0, "NetState level")
	// Flags may come before or after the net file.
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return f, err
	}
	var problems []string
	switch len(pos) {
	case 0:
		problems = append(problems, "missing the net prototxt (goexec inspect NET.prototxt)")
	case 1:
		f.netPath = pos[0]
	default:
		problems = append(problems, fmt.Sprintf("one net prototxt expected, got %q", pos))
	}
	if p := strings.ToLower(f.phase); p != "train" && p != "test" {
		problems = append(problems, fmt.Sprintf("-phase %q: want train or test", f.phase))
	}
	if f.batch < 0 {
		problems = append(problems, fmt.Sprintf("-batch %d: must be positive", f.batch))
	}
	if f.dataShape != "" {
		if _, err := parseCHW(f.dataShape); err != nil {
			problems = append(problems, fmt.Sprintf("-data-shape %q: %v", f.dataShape, err))
		}
	}
	if len(problems) > 0 {
		return f, errors.New(strings.Join(problems, "; "))
	}
	return f, nil
}

func parseCHW(s string) ([3]int, error) {
	var out [3]int
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return out, errors.New("want C,H,W")
	}
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v <= 0 {
			return out, fmt.Errorf("%q is not a positive integer", p)
		}
		out[i] = v
	}
	return out, nil
}

func inspect(args []string, stdout, stderr io.Writer) error {
	return inspectOn(args, stdout, stderr, nil)
}

// inspectOn inspects the net as built for dev (nil: the CPU), which decides
// the DEVICE column.
func inspectOn(args []string, stdout, stderr io.Writer, dev kernels.Device) error {
	f, err := parseInspectFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	param, err := prototxt.ParseNetFile(f.netPath, prototxt.WithWarnings(func(msg string) {
		fmt.Fprintln(stderr, "warning:", msg)
	}))
	if err != nil {
		return err
	}
	reg, err := layers.Standard()
	if err != nil {
		return err
	}
	if f.dataShape == "" && reg.Has("Data") {
		// Data layers take their shape from their database: it must exist.
		if err := data.CheckDataLayers(param); err != nil {
			return fmt.Errorf("%s: %w (give -data-shape C,H,W to inspect the net without it)", f.netPath, err)
		}
	}
	if f.dataShape != "" || !reg.Has("Data") {
		var sample [3]int
		if f.dataShape != "" {
			sample, _ = parseCHW(f.dataShape)
		} else if name := firstOfType(param, "Data"); name != "" {
			return fmt.Errorf("%s: layer %q is a Data layer, whose sample shape comes from its database: give -data-shape C,H,W", f.netPath, name)
		}
		if param, _, err = network.DataAsMemory(param, sample); err != nil {
			return fmt.Errorf("%s: %w", f.netPath, err)
		}
	}
	if f.batch > 0 {
		network.SetBatch(param, f.batch)
	}
	phase := caffepb.Phase_TRAIN
	if strings.EqualFold(f.phase, "test") {
		phase = caffepb.Phase_TEST
	}
	state := &caffepb.NetState{Phase: phase.Enum(), Level: proto.Int32(int32(f.level))}
	if f.stages != "" {
		state.Stage = strings.Split(f.stages, ",")
	}
	n, err := network.New[float32](param, state, reg, network.WithoutFillers(), network.WithDevice(dev))
	if err != nil {
		return fmt.Errorf("%s: %w", f.netPath, err)
	}
	if err := printNet(stdout, n); err != nil {
		return err
	}
	if f.weights != "" {
		return checkWeights(stdout, n, f.weights)
	}
	return nil
}

func firstOfType(p *caffepb.NetParameter, typ string) string {
	for _, lp := range p.GetLayer() {
		if lp.GetType() == typ {
			return lp.GetName()
		}
	}
	return ""
}

func shapeText(s []int) string {
	if len(s) == 0 {
		return "scalar"
	}
	p := make([]string, len(s))
	for i, d := range s {
		p[i] = strconv.Itoa(d)
	}
	return strings.Join(p, "x")
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), 0
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	for v /= unit; v >= unit && i < len(units)-1; i++ {
		v /= unit
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

func countText(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// aliasesBottom holds the layer types whose tops share their bottom's data
// storage, as in Caffe: they add no activation memory.
var aliasesBottom = map[string]bool{"Split": true, "Flatten": true, "Reshape": true}

const floatBytes = 4 // inspect reports float32 memory, the training precision

func printNet(w io.Writer, n *network.Net[float32]) error {
	fmt.Fprintf(w, "net %q, phase %s, %d layers\n\n", n.Name(), n.Phase(), len(n.Layers()))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tTYPE\tBOTTOMS\tTOPS\tPARAMS\tMEMORY\tDEVICE\t")
	g := n.Graph()
	var aliased int64
	for i, lp := range n.LayerParams() {
		var bottoms, tops []string
		for _, id := range g.Bottoms[i] {
			bottoms = append(bottoms, g.BlobNames[id])
		}
		for ti, id := range g.Tops[i] {
			t := g.BlobNames[id] + " " + shapeText(n.Blobs()[id].Shape())
			if ti < len(g.Bottoms[i]) && g.Bottoms[i][ti] == id {
				t += " (in place)"
			}
			tops = append(tops, t)
		}
		params := countText(n.LayerParamCount(i))
		if owned, all := n.LayerParamCount(i), layerParamValues(n, i); all > owned {
			params += fmt.Sprintf(" (+%s shared)", countText(all-owned))
		}
		mem := bytesText(n.LayerActivationCount(i) * floatBytes)
		if aliasesBottom[lp.GetType()] {
			mem = "0 B (shares bottom)"
			aliased += n.LayerActivationCount(i)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", lp.GetName(), lp.GetType(), strings.Join(bottoms, ", "),
			strings.Join(tops, ", "), params, mem, placementText(n.LayerPlacement(i)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := n.Stats()
	s.Activations -= aliased
	fmt.Fprintf(w, "\nparameters: %s (%s trainable), %s\n", countText(s.Params), countText(s.Trainable), bytesText(s.Params*floatBytes))
	fmt.Fprintf(w, "activations: %s values, %s data", countText(s.Activations), bytesText(s.Activations*floatBytes))
	if n.Phase() == caffepb.Phase_TRAIN {
		fmt.Fprintf(w, " (%s with gradients)", bytesText(2*s.Activations*floatBytes))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "outputs: %s\n", strings.Join(n.OutputBlobNames(), ", "))
	return nil
}

// placementText says where a layer runs: the device, with the engine when
// it is not the portable CAFFE one, or "cpu (fallback)" for a host layer on
// a net of another device.
func placementText(pl layer.Placement) string {
	switch {
	case pl.Fallback:
		return pl.Device.Name() + " (fallback)"
	case pl.Engine != layer.EngineCaffe:
		return pl.Device.Name() + " (" + pl.Engine + ")"
	}
	return pl.Device.Name()
}

func layerParamValues(n *network.Net[float32], i int) int64 {
	var c int64
	for _, b := range n.Layers()[i].Blobs() {
		c += int64(b.Count())
	}
	return c
}

// checkWeights loads a .caffemodel into the net and reports how it fits.
func checkWeights(w io.Writer, n *network.Net[float32], path string) error {
	model, err := modelio.ReadCaffemodel(path)
	if err != nil {
		return err
	}
	if err := n.CopyTrainedLayersFrom(model); err != nil {
		return fmt.Errorf("weights %s do not fit the net: %w", path, err)
	}
	inModel := map[string]bool{}
	for _, lp := range model.GetLayer() {
		inModel[lp.GetName()] = len(lp.GetBlobs()) > 0
	}
	var loaded int
	var missing []string
	for i, lp := range n.LayerParams() {
		if len(n.Layers()[i].Blobs()) == 0 {
			continue
		}
		if inModel[lp.GetName()] {
			loaded++
		} else {
			missing = append(missing, lp.GetName())
		}
	}
	var ignored []string
	for _, lp := range model.GetLayer() {
		if len(lp.GetBlobs()) > 0 && n.LayerIndex(lp.GetName()) < 0 {
			ignored = append(ignored, lp.GetName())
		}
	}
	fmt.Fprintf(w, "\nweights %s: %d layers loaded, shapes match\n", path, loaded)
	if len(missing) > 0 {
		fmt.Fprintf(w, "  not in the weights (keep their fillers): %s\n", strings.Join(missing, ", "))
	}
	if len(ignored) > 0 {
		fmt.Fprintf(w, "  in the weights but not in the net (ignored): %s\n", strings.Join(ignored, ", "))
	}
	return nil
}
