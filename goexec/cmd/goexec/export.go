package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/npy"
	"github.com/gocaffe/gocaffe/caffe/onnxexport"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	"github.com/gocaffe/gocaffe/goexec/memcheck"
)

// runExport writes a deploy net with its weights as an ONNX model.
func runExport(args []string) error { return exportCmd(args, os.Stderr) }

func exportCmd(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "deploy net prototxt (Input layer, no loss) (required)")
	weights := fs.String("weights", "", "comma-separated .caffemodel files (required)")
	out := fs.String("onnx", "", "ONNX file to write (required)")
	outputs := fs.String("outputs", "", "comma-separated extra blobs to expose as outputs (e.g. the logits under the Softmax)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var problems []string
	for _, r := range []struct{ v, flag string }{{*model, "-model"}, {*weights, "-weights"}, {*out, "-onnx"}} {
		if r.v == "" {
			problems = append(problems, r.flag+" is required")
		}
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	n, err := buildDeploy(*model, *weights, -1)
	if err != nil {
		return err
	}
	opt := onnxexport.Options{ProducerVersion: version}
	if *outputs != "" {
		opt.Outputs = strings.Split(*outputs, ",")
	}
	m, err := onnxexport.Export(n, opt)
	if err != nil {
		return fmt.Errorf("%s: %w", *model, err)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("%s: %w", *out, err)
	}
	if err := modelio.WriteFileAtomic(*out, b, 0o644); err != nil {
		return err
	}
	var ins, outs []string
	for _, v := range m.GetGraph().GetInput() {
		ins = append(ins, v.GetName())
	}
	for _, v := range m.GetGraph().GetOutput() {
		outs = append(outs, v.GetName())
	}
	fmt.Fprintf(stderr, "goexec export: wrote %s (opset %d, %d nodes, %d initializers, %.1f MB; inputs %s; outputs %s)\n",
		*out, onnxexport.Opset, len(m.GetGraph().GetNode()), len(m.GetGraph().GetInitializer()), float64(len(b))/1e6,
		strings.Join(ins, ", "), strings.Join(outs, ", "))
	return nil
}

// buildDeploy builds a net in the TEST phase with weights from the
// .caffemodel files, or, when weights is empty, from its fillers with seed
// (BatchNorm statistics drawn at random so that the net is not degenerate).
func buildDeploy(model, weights string, seed int64) (*network.Net[float32], error) {
	np, err := prototxt.ParseNetFile(model)
	if err != nil {
		return nil, err
	}
	reg, err := layers.Standard()
	if err != nil {
		return nil, err
	}
	state := &caffepb.NetState{Phase: caffepb.Phase_TEST.Enum()}
	if err := checkNetMemory("building "+model, np, state, reg, false, memcheck.System()); err != nil {
		return nil, err
	}
	if weights == "" {
		n, err := network.New[float32](np, state, reg, network.WithSeed(uint64(seed)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", model, err)
		}
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		for i, lp := range n.LayerParams() {
			if lp.GetType() != "BatchNorm" {
				continue
			}
			bs := n.Layers()[i].Blobs()
			for k := range bs[0].Data() {
				bs[0].Data()[k] = float32(rng.Float64()*0.2 - 0.1)
				bs[1].Data()[k] = float32(0.5 + rng.Float64())
			}
			bs[2].Data()[0] = 1
		}
		return n, nil
	}
	n, err := network.New[float32](np, state, reg, network.WithoutFillers())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", model, err)
	}
	for _, w := range strings.Split(weights, ",") {
		trained, err := modelio.ReadCaffemodel(w)
		if err != nil {
			return nil, err
		}
		if err := n.CopyTrainedLayersFrom(trained); err != nil {
			return nil, fmt.Errorf("%s: %w", w, err)
		}
	}
	return n, nil
}

// runForward runs a deploy net on inputs from .npy files and writes the
// blobs asked for as .npy files: the reference outputs the ONNX and OpenCV
// tests compare against.
func runForward(args []string) error { return forwardCmd(args, os.Stderr) }

func forwardCmd(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "deploy net prototxt (required)")
	weights := fs.String("weights", "", "comma-separated .caffemodel files (or -random-weights)")
	seed := fs.Int64("random-weights", -1, "no -weights: initialise from the fillers with this seed (BatchNorm statistics at random)")
	save := fs.String("save-weights", "", "write the net's weights to this .caffemodel (with -random-weights: a test model)")
	input := fs.String("input", "", "comma-separated BLOB=FILE.npy for the net's Input tops (float32, C order); the batch may differ from the prototxt's")
	blobs := fs.String("blobs", "", "comma-separated blobs to write (default: the net's outputs)")
	outDir := fs.String("out", ".", "directory for BLOB.npy files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var problems []string
	if *model == "" {
		problems = append(problems, "-model is required")
	}
	if (*weights == "") == (*seed < 0) {
		problems = append(problems, "give -weights or -random-weights SEED (one of them)")
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	n, err := buildDeploy(*model, *weights, *seed)
	if err != nil {
		return err
	}
	if *save != "" {
		if err := modelio.WriteCaffemodel(*save, n.ToProto(false)); err != nil {
			return err
		}
	}
	if *input != "" {
		for _, kv := range strings.Split(*input, ",") {
			name, file, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("-input %q: want BLOB=FILE.npy", kv)
			}
			b := n.BlobByName(name)
			if b == nil {
				return fmt.Errorf("-input %s: the net has no blob %q", kv, name)
			}
			shape, data, err := npy.Read(file)
			if err != nil {
				return err
			}
			want := b.Shape()
			if len(shape) != len(want) || func() bool {
				for i := 1; i < len(want); i++ {
					if shape[i] != want[i] {
						return true
					}
				}
				return false
			}() {
				return fmt.Errorf("-input %s: shape %v, the net's %s is %v (the batch may differ)", kv, shape, name, want)
			}
			b.Reshape(shape...)
			copy(b.Data(), data)
		}
		if err := n.Reshape(); err != nil {
			return err
		}
	}
	if _, err := n.Forward(); err != nil {
		return fmt.Errorf("%s: forward: %w", *model, err)
	}
	names := n.OutputBlobNames()
	if *blobs != "" {
		names = strings.Split(*blobs, ",")
	}
	for _, name := range names {
		b := n.BlobByName(name)
		if b == nil {
			return fmt.Errorf("-blobs: the net has no blob %q", name)
		}
		p := *outDir + "/" + strings.ReplaceAll(name, "/", "_") + ".npy"
		if err := npy.Write(p, b.Shape(), b.Data()); err != nil {
			return err
		}
	}
	return nil
}
