// Package onnxexport converts a Caffe deploy net with its trained weights
// into an ONNX model (opset 17), for serving outside GoCaffe (onnxruntime,
// TensorRT, OpenVINO...).
//
// The net is built in the TEST phase, so its blob shapes are Caffe's own;
// the batch dimension of the inputs is left symbolic ("batch"). Caffe's
// in-place layers (ReLU top = bottom) become ordinary nodes: a blob written
// again gets a new value name, "BLOB@LAYER". A layer ONNX cannot express
// (losses, accuracy, data layers, Python layers...) is an error naming it.
package onnxexport

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/onnxexport/onnxpb"
)

// Opset is the ONNX operator set the exported models import.
const Opset = 17

// irVersion is the ONNX IR version that goes with opset 17.
const irVersion = 8

// Options tune Export.
type Options struct {
	// Outputs are extra blobs to expose as graph outputs besides the net's
	// own outputs (blobs no layer consumes), e.g. the logits under a Softmax.
	Outputs []string
	// ProducerVersion is written into the model (GoCaffe's version).
	ProducerVersion string
}

// Export converts n, a net built for the TEST phase with its weights
// loaded, into an ONNX model.
func Export(n *network.Net[float32], opt Options) (*onnxpb.ModelProto, error) {
	e := &exporter{net: n, current: map[string]string{}, used: map[string]bool{}}
	g := &onnxpb.GraphProto{Name: proto.String(n.Name())}
	e.g = g
	for i, lp := range n.LayerParams() {
		if err := e.layer(i, lp); err != nil {
			return nil, fmt.Errorf("layer %q (type %s): %w", lp.GetName(), lp.GetType(), err)
		}
	}
	if len(g.Input) == 0 {
		return nil, fmt.Errorf("net %q has no Input layer: export a deploy net (an Input layer in place of the data layers, no loss or accuracy layers)", n.Name())
	}
	outs := slices.Clone(n.OutputBlobNames())
	for _, o := range opt.Outputs {
		if !slices.Contains(outs, o) {
			outs = append(outs, o)
		}
	}
	for _, name := range outs {
		v, ok := e.current[name]
		if !ok {
			return nil, fmt.Errorf("output blob %q: the net has no such blob", name)
		}
		b := n.BlobByName(name)
		g.Output = append(g.Output, valueInfo(v, b.Shape(), true))
	}
	return &onnxpb.ModelProto{
		IrVersion:       proto.Int64(irVersion),
		ProducerName:    proto.String("GoCaffe"),
		ProducerVersion: proto.String(opt.ProducerVersion),
		Graph:           g,
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
	}, nil
}

type exporter struct {
	net     *network.Net[float32]
	g       *onnxpb.GraphProto
	current map[string]string // Caffe blob name -> ONNX value holding it now
	used    map[string]bool   // ONNX value names taken
}

// fresh returns a value name for top written by layer: the top's own name
// the first time, TOP@LAYER (then with a counter) after.
func (e *exporter) fresh(top, layer string) string {
	name := top
	if e.used[name] {
		name = top + "@" + layer
		for k := 2; e.used[name]; k++ {
			name = fmt.Sprintf("%s@%s#%d", top, layer, k)
		}
	}
	e.used[name] = true
	return name
}

// in returns the ONNX value of layer i's bottom k.
func (e *exporter) in(i, k int) (string, error) {
	g := e.net.Graph()
	name := g.BlobNames[g.Bottoms[i][k]]
	v, ok := e.current[name]
	if !ok {
		return "", fmt.Errorf("bottom %q has no value (produced by a layer that was not exported)", name)
	}
	return v, nil
}

// out names layer i's top k and records it as the blob's value.
func (e *exporter) out(i, k int, lp *caffepb.LayerParameter) string {
	g := e.net.Graph()
	name := g.BlobNames[g.Tops[i][k]]
	v := e.fresh(name, lp.GetName())
	e.current[name] = v
	return v
}

// tmp is a value name for an intermediate result of a layer's nodes.
func (e *exporter) tmp(lp *caffepb.LayerParameter, what string) string {
	return e.fresh(lp.GetName()+"/"+what, lp.GetName())
}

func (e *exporter) node(lp *caffepb.LayerParameter, op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) {
	e.g.Node = append(e.g.Node, &onnxpb.NodeProto{
		Name: proto.String(fmt.Sprintf("%s/%s#%d", lp.GetName(), op, len(e.g.Node))), OpType: proto.String(op),
		Input: ins, Output: outs, Attribute: attrs,
	})
}

// weight adds an initializer with data and dims, named LAYER/what.
func (e *exporter) weight(lp *caffepb.LayerParameter, what string, dims []int, data []float32) string {
	name := e.fresh(lp.GetName()+"/"+what, lp.GetName())
	e.g.Initializer = append(e.g.Initializer, floatTensor(name, dims, data))
	return name
}

func (e *exporter) int64s(lp *caffepb.LayerParameter, what string, vals []int64) string {
	name := e.fresh(lp.GetName()+"/"+what, lp.GetName())
	e.g.Initializer = append(e.g.Initializer, &onnxpb.TensorProto{Name: proto.String(name),
		Dims: []int64{int64(len(vals))}, DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: vals})
	return name
}

func (e *exporter) scalar(lp *caffepb.LayerParameter, what string, v float32) string {
	return e.weight(lp, what, nil, []float32{v})
}

func floatTensor(name string, dims []int, data []float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	d := make([]int64, len(dims))
	for i, x := range dims {
		d[i] = int64(x)
	}
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: d,
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), RawData: raw}
}

func valueInfo(name string, shape []int, symbolicBatch bool) *onnxpb.ValueInfoProto {
	sh := &onnxpb.TensorShapeProto{}
	for i, d := range shape {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		if i == 0 && symbolicBatch {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}
		} else {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
		}
		sh.Dim = append(sh.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Shape: sh}}}}
}

func attrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), I: proto.Int64(v), Type: onnxpb.AttributeProto_INT.Enum()}
}

func attrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), F: proto.Float32(v), Type: onnxpb.AttributeProto_FLOAT.Enum()}
}

func attrInts(name string, vs ...int) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum()}
	for _, v := range vs {
		a.Ints = append(a.Ints, int64(v))
	}
	return a
}

// unsupported explains why a layer type has no ONNX form here.
var unsupported = map[string]string{
	"SoftmaxWithLoss":         "a loss layer: export a deploy net (the loss replaced by a Softmax)",
	"EuclideanLoss":           "a loss layer: export a deploy net",
	"SigmoidCrossEntropyLoss": "a loss layer: export a deploy net",
	"HingeLoss":               "a loss layer: export a deploy net",
	"InfogainLoss":            "a loss layer: export a deploy net",
	"MultinomialLogisticLoss": "a loss layer: export a deploy net",
	"ContrastiveLoss":         "a loss layer: export a deploy net",
	"Accuracy":                "scores against labels: export a deploy net",
	"Data":                    "a data layer: export a deploy net with an Input layer",
	"MemoryData":              "a data layer: export a deploy net with an Input layer",
	"CoSData":                 "a data layer: export a deploy net with an Input layer",
	"ImageData":               "a data layer: export a deploy net with an Input layer",
	"HDF5Data":                "a data layer: export a deploy net with an Input layer",
	"DummyData":               "a data layer: export a deploy net with an Input layer",
	"Python":                  "Python code has no ONNX form",
}

func (e *exporter) layer(i int, lp *caffepb.LayerParameter) error {
	bottoms, tops := e.net.Bottoms(i), e.net.Tops(i)
	blobs := e.net.Layers()[i].Blobs()
	switch typ := lp.GetType(); typ {
	case "Input":
		for k, t := range tops {
			v := e.out(i, k, lp)
			e.g.Input = append(e.g.Input, valueInfo(v, t.Shape(), true))
		}
		return nil
	case "Split":
		x, err := e.in(i, 0)
		if err != nil {
			return err
		}
		g := e.net.Graph()
		for k := range tops {
			e.current[g.BlobNames[g.Tops[i][k]]] = x
		}
		return nil
	case "Silence":
		return nil
	case "Dropout":
		return e.unary(i, lp, "Identity")
	case "Sigmoid":
		return e.unary(i, lp, "Sigmoid")
	case "TanH":
		return e.unary(i, lp, "Tanh")
	case "AbsVal":
		return e.unary(i, lp, "Abs")
	case "ReLU":
		if s := lp.GetReluParam().GetNegativeSlope(); s != 0 {
			return e.unary(i, lp, "LeakyRelu", attrFloat("alpha", s))
		}
		return e.unary(i, lp, "Relu")
	case "ELU":
		return e.unary(i, lp, "Elu", attrFloat("alpha", lp.GetEluParam().GetAlpha()))
	case "Softmax":
		axis := int(lp.GetSoftmaxParam().GetAxis())
		return e.unary(i, lp, "Softmax", attrInt("axis", int64(axis)))
	case "Convolution", "Deconvolution":
		return e.conv(i, lp, bottoms, blobs)
	case "Pooling":
		return e.pool(i, lp, bottoms, tops)
	case "InnerProduct":
		return e.innerProduct(i, lp, bottoms, blobs)
	case "LRN":
		return e.lrn(i, lp)
	case "Concat":
		var ins []string
		for k := range bottoms {
			x, err := e.in(i, k)
			if err != nil {
				return err
			}
			ins = append(ins, x)
		}
		cp := lp.GetConcatParam()
		axis := cp.GetAxis()
		if cp != nil && cp.ConcatDim != nil && cp.Axis == nil {
			axis = int32(cp.GetConcatDim())
		}
		e.node(lp, "Concat", ins, []string{e.out(i, 0, lp)}, attrInt("axis", int64(axis)))
		return nil
	case "Eltwise":
		return e.eltwise(i, lp, bottoms)
	case "BatchNorm":
		return e.batchNorm(i, lp, bottoms, blobs)
	case "Scale", "Bias":
		return e.scaleBias(i, lp, bottoms, blobs)
	case "Power":
		return e.power(i, lp)
	case "Flatten":
		fp := lp.GetFlattenParam()
		rank := len(bottoms[0].Shape())
		end := int(fp.GetEndAxis())
		if end < 0 {
			end += rank
		}
		if end != rank-1 {
			return fmt.Errorf("flatten end_axis %d: only flattening to the last axis has an ONNX Flatten", fp.GetEndAxis())
		}
		axis := int(fp.GetAxis())
		if axis < 0 {
			axis += rank
		}
		return e.unary(i, lp, "Flatten", attrInt("axis", int64(axis)))
	case "Reshape":
		shape := []int64{0}
		for _, d := range tops[0].Shape()[1:] {
			shape = append(shape, int64(d))
		}
		x, err := e.in(i, 0)
		if err != nil {
			return err
		}
		e.node(lp, "Reshape", []string{x, e.int64s(lp, "shape", shape)}, []string{e.out(i, 0, lp)})
		return nil
	default:
		if why, ok := unsupported[typ]; ok {
			return fmt.Errorf("ONNX cannot express this layer: %s", why)
		}
		return fmt.Errorf("ONNX cannot express this layer: GoCaffe has no ONNX form for type %s", typ)
	}
}

func (e *exporter) unary(i int, lp *caffepb.LayerParameter, op string, attrs ...*onnxpb.AttributeProto) error {
	x, err := e.in(i, 0)
	if err != nil {
		return err
	}
	e.node(lp, op, []string{x}, []string{e.out(i, 0, lp)}, attrs...)
	return nil
}

// spatial returns Caffe's per-axis values: the _h/_w pair when set, else
// the repeated field (one value for all axes, or one per axis), else def.
func spatial(rep []uint32, h, w *uint32, axes int, def int) ([]int, error) {
	out := make([]int, axes)
	switch {
	case h != nil || w != nil:
		if axes != 2 {
			return nil, fmt.Errorf("_h/_w given for %d spatial axes", axes)
		}
		out[0], out[1] = int(ptrOr(h, uint32(def))), int(ptrOr(w, uint32(def)))
	case len(rep) == 0:
		for k := range out {
			out[k] = def
		}
	case len(rep) == 1:
		for k := range out {
			out[k] = int(rep[0])
		}
	case len(rep) == axes:
		for k := range out {
			out[k] = int(rep[k])
		}
	default:
		return nil, fmt.Errorf("%d values for %d spatial axes", len(rep), axes)
	}
	return out, nil
}

func ptrOr(p *uint32, def uint32) uint32 {
	if p == nil {
		return def
	}
	return *p
}

func (e *exporter) conv(i int, lp *caffepb.LayerParameter, bottoms []*blob.Blob[float32], blobs []*blob.Blob[float32]) error {
	cp := lp.GetConvolutionParam()
	if cp == nil {
		return fmt.Errorf("no convolution_param")
	}
	if cp.GetAxis() != 1 {
		return fmt.Errorf("convolution axis %d: ONNX convolves from axis 1", cp.GetAxis())
	}
	axes := len(bottoms[0].Shape()) - 2
	kernel, err := spatial(cp.GetKernelSize(), cp.KernelH, cp.KernelW, axes, 0)
	if err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	stride, err := spatial(cp.GetStride(), cp.StrideH, cp.StrideW, axes, 1)
	if err != nil {
		return fmt.Errorf("stride: %w", err)
	}
	pad, err := spatial(cp.GetPad(), cp.PadH, cp.PadW, axes, 0)
	if err != nil {
		return fmt.Errorf("pad: %w", err)
	}
	dil, err := spatial(cp.GetDilation(), nil, nil, axes, 1)
	if err != nil {
		return fmt.Errorf("dilation: %w", err)
	}
	x, err := e.in(i, 0)
	if err != nil {
		return err
	}
	if len(blobs) == 0 {
		return fmt.Errorf("no weights")
	}
	ins := []string{x, e.weight(lp, "W", blobs[0].Shape(), blobs[0].Data())}
	if cp.GetBiasTerm() && len(blobs) > 1 {
		ins = append(ins, e.weight(lp, "B", []int{blobs[1].Count()}, blobs[1].Data()))
	}
	op := "Conv"
	if lp.GetType() == "Deconvolution" {
		op = "ConvTranspose"
	}
	e.node(lp, op, ins, []string{e.out(i, 0, lp)},
		attrInts("kernel_shape", kernel...), attrInts("strides", stride...),
		attrInts("pads", append(slices.Clone(pad), pad...)...), attrInts("dilations", dil...),
		attrInt("group", int64(cp.GetGroup())))
	return nil
}

// pool maps Caffe pooling onto ONNX's, with the output size Caffe computed
// (ceil rounding, windows clipped to start inside the padded image) reached
// through extra padding at the bottom and right.
func (e *exporter) pool(i int, lp *caffepb.LayerParameter, bottoms, tops []*blob.Blob[float32]) error {
	pp := lp.GetPoolingParam()
	if pp == nil {
		pp = &caffepb.PoolingParameter{}
	}
	in, out := bottoms[0].Shape(), tops[0].Shape()
	if len(in) != 4 {
		return fmt.Errorf("pooling of a %d-axis blob: want N×C×H×W", len(in))
	}
	x, err := e.in(i, 0)
	if err != nil {
		return err
	}
	method := pp.GetPool()
	if method == caffepb.PoolingParameter_STOCHASTIC {
		return fmt.Errorf("ONNX cannot express this layer: STOCHASTIC pooling")
	}
	if pp.GetGlobalPooling() {
		op := "GlobalMaxPool"
		if method == caffepb.PoolingParameter_AVE {
			op = "GlobalAveragePool"
		}
		e.node(lp, op, []string{x}, []string{e.out(i, 0, lp)})
		return nil
	}
	k := []int{int(pp.GetKernelSize()), int(pp.GetKernelSize())}
	if pp.KernelH != nil || pp.KernelW != nil {
		k = []int{int(pp.GetKernelH()), int(pp.GetKernelW())}
	}
	s := []int{int(pp.GetStride()), int(pp.GetStride())}
	if pp.StrideH != nil || pp.StrideW != nil {
		s = []int{int(pp.GetStrideH()), int(pp.GetStrideW())}
	}
	p := []int{int(pp.GetPad()), int(pp.GetPad())}
	if pp.PadH != nil || pp.PadW != nil {
		p = []int{int(pp.GetPadH()), int(pp.GetPadW())}
	}
	end := make([]int, 2)
	extra := false
	for a := 0; a < 2; a++ {
		// ONNX: out = floor((in + p + end - k) / s) + 1; choose end for Caffe's out.
		end[a] = (out[2+a]-1)*s[a] + k[a] - in[2+a] - p[a]
		if end[a] < 0 {
			end[a] = 0
		}
		if end[a] != p[a] {
			extra = true
		}
		if got := (in[2+a]+p[a]+end[a]-k[a])/s[a] + 1; got != out[2+a] {
			return fmt.Errorf("pooled size %d on axis %d cannot be reached in ONNX (got %d)", out[2+a], 2+a, got)
		}
	}
	attrs := []*onnxpb.AttributeProto{attrInts("kernel_shape", k...), attrInts("strides", s...),
		attrInts("pads", p[0], p[1], end[0], end[1])}
	op := "MaxPool"
	if method == caffepb.PoolingParameter_AVE {
		op = "AveragePool"
		switch {
		case p[0] == 0 && p[1] == 0:
			// Caffe divides by the window clipped to the image.
			attrs = append(attrs, attrInt("count_include_pad", 0))
		case !extra:
			// Caffe counts the padding in the divisor.
			attrs = append(attrs, attrInt("count_include_pad", 1))
		default:
			return fmt.Errorf("ONNX cannot express this layer: average pooling with padding whose last window runs past the padding (Caffe's divisor counts the padding but not the overrun)")
		}
	}
	e.node(lp, op, []string{x}, []string{e.out(i, 0, lp)}, attrs...)
	return nil
}

func (e *exporter) innerProduct(i int, lp *caffepb.LayerParameter, bottoms []*blob.Blob[float32], blobs []*blob.Blob[float32]) error {
	ip := lp.GetInnerProductParam()
	if ip.GetAxis() != 1 {
		return fmt.Errorf("inner product axis %d: only axis 1 is exported", ip.GetAxis())
	}
	if len(blobs) == 0 {
		return fmt.Errorf("no weights")
	}
	x, err := e.in(i, 0)
	if err != nil {
		return err
	}
	if len(bottoms[0].Shape()) != 2 {
		flat := e.tmp(lp, "flat")
		e.node(lp, "Flatten", []string{x}, []string{flat}, attrInt("axis", 1))
		x = flat
	}
	w := blobs[0]
	n := int(ip.GetNumOutput())
	k := w.Count() / n
	dims, transB := []int{n, k}, int64(1)
	if ip.GetTranspose() {
		dims, transB = []int{k, n}, 0
	}
	ins := []string{x, e.weight(lp, "W", dims, w.Data())}
	if ip.GetBiasTerm() && len(blobs) > 1 {
		ins = append(ins, e.weight(lp, "B", []int{n}, blobs[1].Data()))
	}
	e.node(lp, "Gemm", ins, []string{e.out(i, 0, lp)}, attrInt("transB", transB))
	return nil
}

func (e *exporter) lrn(i int, lp *caffepb.LayerParameter) error {
	p := lp.GetLrnParam()
	x, err := e.in(i, 0)
	if err != nil {
		return err
	}
	size := int(p.GetLocalSize())
	if p.GetNormRegion() == caffepb.LRNParameter_ACROSS_CHANNELS {
		e.node(lp, "LRN", []string{x}, []string{e.out(i, 0, lp)}, attrInt("size", int64(size)),
			attrFloat("alpha", p.GetAlpha()), attrFloat("beta", p.GetBeta()), attrFloat("bias", p.GetK()))
		return nil
	}
	// WITHIN_CHANNEL, as Caffe computes it: x · (1 + α·avgpool(x²))^-β,
	// the average over local_size² positions counting the zero padding.
	pad := (size - 1) / 2
	sq, avg, scaled, shifted, pw := e.tmp(lp, "sq"), e.tmp(lp, "avg"), e.tmp(lp, "scaled"), e.tmp(lp, "shifted"), e.tmp(lp, "pow")
	e.node(lp, "Mul", []string{x, x}, []string{sq})
	e.node(lp, "AveragePool", []string{sq}, []string{avg}, attrInts("kernel_shape", size, size),
		attrInts("strides", 1, 1), attrInts("pads", pad, pad, pad, pad), attrInt("count_include_pad", 1))
	e.node(lp, "Mul", []string{avg, e.scalar(lp, "alpha", p.GetAlpha())}, []string{scaled})
	e.node(lp, "Add", []string{scaled, e.scalar(lp, "one", 1)}, []string{shifted})
	e.node(lp, "Pow", []string{shifted, e.scalar(lp, "negbeta", -p.GetBeta())}, []string{pw})
	e.node(lp, "Mul", []string{x, pw}, []string{e.out(i, 0, lp)})
	return nil
}

func (e *exporter) eltwise(i int, lp *caffepb.LayerParameter, bottoms []*blob.Blob[float32]) error {
	p := lp.GetEltwiseParam()
	var ins []string
	for k := range bottoms {
		x, err := e.in(i, k)
		if err != nil {
			return err
		}
		ins = append(ins, x)
	}
	switch p.GetOperation() {
	case caffepb.EltwiseParameter_PROD:
		e.chain(i, lp, "Mul", ins)
		return nil
	case caffepb.EltwiseParameter_MAX:
		e.node(lp, "Max", ins, []string{e.out(i, 0, lp)})
		return nil
	default:
		if c := p.GetCoeff(); len(c) > 0 {
			if len(c) != len(ins) {
				return fmt.Errorf("%d coeff values for %d bottoms", len(c), len(ins))
			}
			for k := range ins {
				if c[k] != 1 {
					scaled := e.tmp(lp, fmt.Sprintf("coeff%d", k))
					e.node(lp, "Mul", []string{ins[k], e.scalar(lp, fmt.Sprintf("c%d", k), c[k])}, []string{scaled})
					ins[k] = scaled
				}
			}
		}
		e.node(lp, "Sum", ins, []string{e.out(i, 0, lp)})
		return nil
	}
}

// chain applies a binary op left to right over ins.
func (e *exporter) chain(i int, lp *caffepb.LayerParameter, op string, ins []string) {
	acc := ins[0]
	for k := 1; k < len(ins); k++ {
		var o string
		if k == len(ins)-1 {
			o = e.out(i, 0, lp)
		} else {
			o = e.tmp(lp, fmt.Sprintf("prod%d", k))
		}
		e.node(lp, op, []string{acc, ins[k]}, []string{o})
		acc = o
	}
}

func (e *exporter) batchNorm(i int, lp *caffepb.LayerParameter, bottoms []*blob.Blob[float32], blobs []*blob.Blob[float32]) error {
	if len(blobs) < 3 {
		return fmt.Errorf("want 3 blobs (mean, variance, scale factor), have %d", len(blobs))
	}
	x, err := e.in(i, 0)
	if err != nil {
		return err
	}
	c := blobs[0].Count()
	sf := blobs[2].Data()[0]
	f := float32(0)
	if sf != 0 {
		f = 1 / sf
	}
	mean, variance := make([]float32, c), make([]float32, c)
	ones, zeros := make([]float32, c), make([]float32, c)
	for k := 0; k < c; k++ {
		mean[k] = blobs[0].Data()[k] * f
		variance[k] = blobs[1].Data()[k] * f
		ones[k] = 1
	}
	if len(bottoms[0].Shape()) < 2 || bottoms[0].Shape()[1] != c {
		return fmt.Errorf("bottom %s does not have %d channels on axis 1", blob.ShapeString(bottoms[0].Shape()), c)
	}
	eps := lp.GetBatchNormParam().GetEps()
	e.node(lp, "BatchNormalization", []string{x, e.weight(lp, "scale", []int{c}, ones), e.weight(lp, "bias", []int{c}, zeros),
		e.weight(lp, "mean", []int{c}, mean), e.weight(lp, "var", []int{c}, variance)},
		[]string{e.out(i, 0, lp)}, attrFloat("epsilon", eps))
	return nil
}

// scaleBias maps Scale (γ, optional β) and Bias (β) with their parameters
// as blobs, broadcast from axis over num_axes axes.
func (e *exporter) scaleBias(i int, lp *caffepb.LayerParameter, bottoms []*blob.Blob[float32], blobs []*blob.Blob[float32]) error {
	if len(bottoms) != 1 {
		return fmt.Errorf("a %s layer with %d bottoms (the factor as an input) is not exported", lp.GetType(), len(bottoms))
	}
	x, err := e.in(i, 0)
	if err != nil {
		return err
	}
	var axis int
	if lp.GetType() == "Scale" {
		axis = int(lp.GetScaleParam().GetAxis())
	} else {
		axis = int(lp.GetBiasParam().GetAxis())
	}
	shape := bottoms[0].Shape()
	if axis < 0 {
		axis += len(shape)
	}
	// The parameter's shape padded with ones to the bottom's rank.
	bshape := func(b *blob.Blob[float32]) []int {
		s := slices.Clone(b.Shape())
		for len(s) < len(shape)-axis {
			s = append(s, 1)
		}
		return s
	}
	if len(blobs) == 0 {
		return fmt.Errorf("no weights")
	}
	if lp.GetType() == "Bias" {
		e.node(lp, "Add", []string{x, e.weight(lp, "B", bshape(blobs[0]), blobs[0].Data())}, []string{e.out(i, 0, lp)})
		return nil
	}
	if len(blobs) > 1 {
		scaled := e.tmp(lp, "scaled")
		e.node(lp, "Mul", []string{x, e.weight(lp, "gamma", bshape(blobs[0]), blobs[0].Data())}, []string{scaled})
		e.node(lp, "Add", []string{scaled, e.weight(lp, "beta", bshape(blobs[1]), blobs[1].Data())}, []string{e.out(i, 0, lp)})
		return nil
	}
	e.node(lp, "Mul", []string{x, e.weight(lp, "gamma", bshape(blobs[0]), blobs[0].Data())}, []string{e.out(i, 0, lp)})
	return nil
}

func (e *exporter) power(i int, lp *caffepb.LayerParameter) error {
	p := lp.GetPowerParam()
	x, err := e.in(i, 0)
	if err != nil {
		return err
	}
	v := x
	steps := 0
	if p.GetScale() != 1 {
		steps++
	}
	if p.GetShift() != 0 {
		steps++
	}
	if p.GetPower() != 1 {
		steps++
	}
	next := func() string {
		steps--
		if steps == 0 {
			return e.out(i, 0, lp)
		}
		return e.tmp(lp, fmt.Sprintf("step%d", steps))
	}
	if steps == 0 {
		e.node(lp, "Identity", []string{x}, []string{e.out(i, 0, lp)})
		return nil
	}
	if p.GetScale() != 1 {
		o := next()
		e.node(lp, "Mul", []string{v, e.scalar(lp, "scale", p.GetScale())}, []string{o})
		v = o
	}
	if p.GetShift() != 0 {
		o := next()
		e.node(lp, "Add", []string{v, e.scalar(lp, "shift", p.GetShift())}, []string{o})
		v = o
	}
	if p.GetPower() != 1 {
		e.node(lp, "Pow", []string{v, e.scalar(lp, "power", p.GetPower())}, []string{next()})
	}
	return nil
}
