package prototxt

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// Upgrades records what UpgradeNet changed and the problems Caffe would log
// (and then ignore) while doing so.
type Upgrades struct {
	// Steps lists the upgrades applied, in order: "V0", "data-transform",
	// "V1", "input", "batch-norm".
	Steps []string
	// Warnings are settings that had no place in the upgraded net and were
	// dropped, exactly where Caffe logs "Unknown parameter ... for layer
	// type ..." and continues.
	Warnings []string
}

// NetNeedsUpgrade reports whether net uses any legacy form that UpgradeNet
// rewrites.
func NetNeedsUpgrade(net *caffepb.NetParameter) bool {
	return needsV0(net) || len(net.GetLayers()) > 0 || needsDataUpgrade(net) ||
		len(net.GetInput()) > 0 || needsBatchNormUpgrade(net)
}

// UpgradeNet rewrites net in place into the current form, following Caffe's
// UpgradeNetAsNeeded step by step: V0 layers (`layers { layer { ... } }`,
// padding layers folded into the following convolution or pooling) become
// V1 layers; data layers' scale/mean_file/crop_size/mirror move into
// transform_param; V1 layers (`layers { type: ENUM }`) become `layer` with a
// type string and ParamSpecs built from blobs_lr/weight_decay/param; legacy
// net inputs become one Input layer at the front; and old BatchNorm layers
// with three ParamSpecs get lr_mult and decay_mult 0.
//
// Blobs are moved, not copied, so upgrading a large legacy .caffemodel costs
// no extra memory. Where Caffe aborts (an unknown V0 or V1 layer type, a net
// with both `layer` and `layers`, a padding layer feeding anything but one
// convolution or pooling layer, mis-sized input_dim), UpgradeNet returns an
// error.
func UpgradeNet(net *caffepb.NetParameter) (*Upgrades, error) {
	up := &Upgrades{}
	if needsV0(net) {
		if err := upgradeV0Net(net, up); err != nil {
			return up, fmt.Errorf("upgrading V0 net: %w", err)
		}
		up.Steps = append(up.Steps, "V0")
	}
	if needsDataUpgrade(net) {
		upgradeDataTransform(net)
		up.Steps = append(up.Steps, "data-transform")
	}
	if len(net.GetLayers()) > 0 {
		if err := upgradeV1Net(net, up); err != nil {
			return up, fmt.Errorf("upgrading V1 net: %w", err)
		}
		up.Steps = append(up.Steps, "V1")
	}
	if len(net.GetInput()) > 0 {
		if err := upgradeInput(net); err != nil {
			return up, fmt.Errorf("upgrading net inputs: %w", err)
		}
		up.Steps = append(up.Steps, "input")
	}
	if needsBatchNormUpgrade(net) {
		for _, l := range net.Layer {
			if l.GetType() == "BatchNorm" && len(l.Param) == 3 {
				for _, p := range l.Param {
					p.LrMult = proto.Float32(0)
					p.DecayMult = proto.Float32(0)
				}
			}
		}
		up.Steps = append(up.Steps, "batch-norm")
	}
	return up, nil
}

func needsV0(net *caffepb.NetParameter) bool {
	for _, l := range net.GetLayers() {
		if l.Layer != nil {
			return true
		}
	}
	return false
}

func needsBatchNormUpgrade(net *caffepb.NetParameter) bool {
	for _, l := range net.GetLayer() {
		if l.GetType() == "BatchNorm" && len(l.Param) == 3 {
			return true
		}
	}
	return false
}

// upgradeV0Net replaces the V0 layers of net with equivalent V1 layers. Like
// Caffe it keeps only name, input, input_dim and force_backward of the net.
func upgradeV0Net(net *caffepb.NetParameter, up *Upgrades) error {
	layers, err := foldV0Padding(net)
	if err != nil {
		return err
	}
	out := make([]*caffepb.V1LayerParameter, 0, len(layers))
	for i, l := range layers {
		v1, err := upgradeV0Layer(l, up)
		if err != nil {
			return fmt.Errorf("layer %d (%q): %w", i, l.GetLayer().GetName(), err)
		}
		out = append(out, v1)
	}
	*net = caffepb.NetParameter{
		Name:          net.Name,
		Input:         net.Input,
		InputDim:      net.InputDim,
		ForceBackward: net.ForceBackward,
		Layers:        out,
	}
	return nil
}

// foldV0Padding drops V0 "padding" layers, moving their pad into the
// convolution or pooling layer they feed and rewiring its bottom, as Caffe's
// UpgradeV0PaddingLayers does. The kept layers are changed in place (only
// padding layers are read back, and those are never changed), so their
// blobs are not copied.
func foldV0Padding(net *caffepb.NetParameter) ([]*caffepb.V1LayerParameter, error) {
	lastTop := map[string]int{}
	for _, in := range net.Input {
		lastTop[in] = -1
	}
	var kept []*caffepb.V1LayerParameter
	for i, conn := range net.Layers {
		lp := conn.GetLayer()
		if lp.GetType() != "padding" {
			kept = append(kept, conn)
		}
		for j, b := range net.Layers[i].Bottom {
			src, ok := lastTop[b]
			if !ok {
				return nil, fmt.Errorf("layer %d (%q): unknown bottom blob %q", i, lp.GetName(), b)
			}
			if src == -1 {
				continue
			}
			pad := net.Layers[src]
			if pad.GetLayer().GetType() != "padding" {
				continue
			}
			switch {
			case lp.GetType() != "conv" && lp.GetType() != "pool":
				return nil, fmt.Errorf("layer %d (%q): padding layer %q feeds a layer of type %q; only conv and pool may follow padding",
					i, lp.GetName(), pad.GetLayer().GetName(), lp.GetType())
			case len(net.Layers[i].Bottom) != 1:
				return nil, fmt.Errorf("layer %d (%q): a layer fed by padding must have exactly one bottom", i, lp.GetName())
			case len(pad.Bottom) != 1 || len(pad.Top) != 1:
				return nil, fmt.Errorf("padding layer %q must have exactly one bottom and one top", pad.GetLayer().GetName())
			}
			last := kept[len(kept)-1]
			if last.Layer == nil {
				last.Layer = &caffepb.V0LayerParameter{}
			}
			last.Layer.Pad = proto.Uint32(pad.GetLayer().GetPad())
			last.Bottom[j] = pad.Bottom[0]
		}
		for _, t := range net.Layers[i].Top {
			lastTop[t] = i
		}
	}
	return kept, nil
}

// v0Types maps V0's lower-case layer type names to V1's enum.
var v0Types = map[string]caffepb.V1LayerParameter_LayerType{
	"accuracy":                  caffepb.V1LayerParameter_ACCURACY,
	"bnll":                      caffepb.V1LayerParameter_BNLL,
	"concat":                    caffepb.V1LayerParameter_CONCAT,
	"conv":                      caffepb.V1LayerParameter_CONVOLUTION,
	"data":                      caffepb.V1LayerParameter_DATA,
	"dropout":                   caffepb.V1LayerParameter_DROPOUT,
	"euclidean_loss":            caffepb.V1LayerParameter_EUCLIDEAN_LOSS,
	"flatten":                   caffepb.V1LayerParameter_FLATTEN,
	"hdf5_data":                 caffepb.V1LayerParameter_HDF5_DATA,
	"hdf5_output":               caffepb.V1LayerParameter_HDF5_OUTPUT,
	"im2col":                    caffepb.V1LayerParameter_IM2COL,
	"images":                    caffepb.V1LayerParameter_IMAGE_DATA,
	"infogain_loss":             caffepb.V1LayerParameter_INFOGAIN_LOSS,
	"innerproduct":              caffepb.V1LayerParameter_INNER_PRODUCT,
	"lrn":                       caffepb.V1LayerParameter_LRN,
	"multinomial_logistic_loss": caffepb.V1LayerParameter_MULTINOMIAL_LOGISTIC_LOSS,
	"pool":                      caffepb.V1LayerParameter_POOLING,
	"relu":                      caffepb.V1LayerParameter_RELU,
	"sigmoid":                   caffepb.V1LayerParameter_SIGMOID,
	"softmax":                   caffepb.V1LayerParameter_SOFTMAX,
	"softmax_loss":              caffepb.V1LayerParameter_SOFTMAX_LOSS,
	"split":                     caffepb.V1LayerParameter_SPLIT,
	"tanh":                      caffepb.V1LayerParameter_TANH,
	"window_data":               caffepb.V1LayerParameter_WINDOW_DATA,
}

// upgradeV0Layer converts one V0 layer (wrapped in its V1 connection) into a
// V1 layer, field by field as Caffe's UpgradeV0LayerParameter does.
func upgradeV0Layer(conn *caffepb.V1LayerParameter, up *Upgrades) (*caffepb.V1LayerParameter, error) {
	out := &caffepb.V1LayerParameter{Bottom: conn.Bottom, Top: conn.Top}
	v0 := conn.Layer
	if v0 == nil {
		return out, nil
	}
	out.Name = v0.Name
	typ := v0.GetType()
	if v0.Type != nil {
		t, ok := v0Types[typ]
		if !ok {
			return nil, fmt.Errorf("unknown V0 layer type %q", typ)
		}
		out.Type = t.Enum()
	}
	out.Blobs = v0.Blobs
	out.BlobsLr = v0.BlobsLr
	out.WeightDecay = v0.WeightDecay

	drop := func(field string) {
		up.Warnings = append(up.Warnings, fmt.Sprintf("layer %q: V0 parameter %s does not apply to layer type %q; dropped", v0.GetName(), field, typ))
	}
	conv := func() *caffepb.ConvolutionParameter {
		if out.ConvolutionParam == nil {
			out.ConvolutionParam = &caffepb.ConvolutionParameter{}
		}
		return out.ConvolutionParam
	}
	ip := func() *caffepb.InnerProductParameter {
		if out.InnerProductParam == nil {
			out.InnerProductParam = &caffepb.InnerProductParameter{}
		}
		return out.InnerProductParam
	}
	pool := func() *caffepb.PoolingParameter {
		if out.PoolingParam == nil {
			out.PoolingParam = &caffepb.PoolingParameter{}
		}
		return out.PoolingParam
	}
	lrn := func() *caffepb.LRNParameter {
		if out.LrnParam == nil {
			out.LrnParam = &caffepb.LRNParameter{}
		}
		return out.LrnParam
	}
	data := func() *caffepb.DataParameter {
		if out.DataParam == nil {
			out.DataParam = &caffepb.DataParameter{}
		}
		return out.DataParam
	}
	hdf5 := func() *caffepb.HDF5DataParameter {
		if out.Hdf5DataParam == nil {
			out.Hdf5DataParam = &caffepb.HDF5DataParameter{}
		}
		return out.Hdf5DataParam
	}
	images := func() *caffepb.ImageDataParameter {
		if out.ImageDataParam == nil {
			out.ImageDataParam = &caffepb.ImageDataParameter{}
		}
		return out.ImageDataParam
	}
	window := func() *caffepb.WindowDataParameter {
		if out.WindowDataParam == nil {
			out.WindowDataParam = &caffepb.WindowDataParameter{}
		}
		return out.WindowDataParam
	}
	transform := func() *caffepb.TransformationParameter {
		if out.TransformParam == nil {
			out.TransformParam = &caffepb.TransformationParameter{}
		}
		return out.TransformParam
	}

	if v0.NumOutput != nil {
		switch typ {
		case "conv":
			conv().NumOutput = v0.NumOutput
		case "innerproduct":
			ip().NumOutput = v0.NumOutput
		default:
			drop("num_output")
		}
	}
	if v0.Biasterm != nil {
		switch typ {
		case "conv":
			conv().BiasTerm = v0.Biasterm
		case "innerproduct":
			ip().BiasTerm = v0.Biasterm
		default:
			drop("biasterm")
		}
	}
	if v0.WeightFiller != nil {
		switch typ {
		case "conv":
			conv().WeightFiller = v0.WeightFiller
		case "innerproduct":
			ip().WeightFiller = v0.WeightFiller
		default:
			drop("weight_filler")
		}
	}
	if v0.BiasFiller != nil {
		switch typ {
		case "conv":
			conv().BiasFiller = v0.BiasFiller
		case "innerproduct":
			ip().BiasFiller = v0.BiasFiller
		default:
			drop("bias_filler")
		}
	}
	if v0.Pad != nil {
		switch typ {
		case "conv":
			conv().Pad = append(conv().Pad, v0.GetPad())
		case "pool":
			pool().Pad = v0.Pad
		default:
			drop("pad")
		}
	}
	if v0.Kernelsize != nil {
		switch typ {
		case "conv":
			conv().KernelSize = append(conv().KernelSize, v0.GetKernelsize())
		case "pool":
			pool().KernelSize = v0.Kernelsize
		default:
			drop("kernelsize")
		}
	}
	if v0.Group != nil {
		if typ == "conv" {
			conv().Group = v0.Group
		} else {
			drop("group")
		}
	}
	if v0.Stride != nil {
		switch typ {
		case "conv":
			conv().Stride = append(conv().Stride, v0.GetStride())
		case "pool":
			pool().Stride = v0.Stride
		default:
			drop("stride")
		}
	}
	if v0.Pool != nil {
		if typ == "pool" {
			switch v0.GetPool() {
			case caffepb.V0LayerParameter_MAX:
				pool().Pool = caffepb.PoolingParameter_MAX.Enum()
			case caffepb.V0LayerParameter_AVE:
				pool().Pool = caffepb.PoolingParameter_AVE.Enum()
			case caffepb.V0LayerParameter_STOCHASTIC:
				pool().Pool = caffepb.PoolingParameter_STOCHASTIC.Enum()
			default:
				up.Warnings = append(up.Warnings, fmt.Sprintf("layer %q: unknown pool method %d; dropped", v0.GetName(), v0.GetPool()))
			}
		} else {
			drop("pool")
		}
	}
	if v0.DropoutRatio != nil {
		if typ == "dropout" {
			out.DropoutParam = &caffepb.DropoutParameter{DropoutRatio: v0.DropoutRatio}
		} else {
			drop("dropout_ratio")
		}
	}
	if v0.LocalSize != nil {
		if typ == "lrn" {
			lrn().LocalSize = v0.LocalSize
		} else {
			drop("local_size")
		}
	}
	if v0.Alpha != nil {
		if typ == "lrn" {
			lrn().Alpha = v0.Alpha
		} else {
			drop("alpha")
		}
	}
	if v0.Beta != nil {
		if typ == "lrn" {
			lrn().Beta = v0.Beta
		} else {
			drop("beta")
		}
	}
	if v0.K != nil {
		if typ == "lrn" {
			lrn().K = v0.K
		} else {
			drop("k")
		}
	}
	if v0.Source != nil {
		switch typ {
		case "data":
			data().Source = v0.Source
		case "hdf5_data":
			hdf5().Source = v0.Source
		case "images":
			images().Source = v0.Source
		case "window_data":
			window().Source = v0.Source
		case "infogain_loss":
			out.InfogainLossParam = &caffepb.InfogainLossParameter{Source: v0.Source}
		default:
			drop("source")
		}
	}
	if v0.Scale != nil {
		transform().Scale = v0.Scale
	}
	if v0.Meanfile != nil {
		transform().MeanFile = v0.Meanfile
	}
	if v0.Batchsize != nil {
		switch typ {
		case "data":
			data().BatchSize = v0.Batchsize
		case "hdf5_data":
			hdf5().BatchSize = v0.Batchsize
		case "images":
			images().BatchSize = v0.Batchsize
		case "window_data":
			window().BatchSize = v0.Batchsize
		default:
			drop("batchsize")
		}
	}
	if v0.Cropsize != nil {
		transform().CropSize = v0.Cropsize
	}
	if v0.Mirror != nil {
		transform().Mirror = v0.Mirror
	}
	if v0.RandSkip != nil {
		switch typ {
		case "data":
			data().RandSkip = v0.RandSkip
		case "images":
			images().RandSkip = v0.RandSkip
		default:
			drop("rand_skip")
		}
	}
	if v0.ShuffleImages != nil {
		if typ == "images" {
			images().Shuffle = v0.ShuffleImages
		} else {
			drop("shuffle_images")
		}
	}
	if v0.NewHeight != nil {
		if typ == "images" {
			images().NewHeight = proto.Uint32(uint32(v0.GetNewHeight()))
		} else {
			drop("new_height")
		}
	}
	if v0.NewWidth != nil {
		if typ == "images" {
			images().NewWidth = proto.Uint32(uint32(v0.GetNewWidth()))
		} else {
			drop("new_width")
		}
	}
	if v0.ConcatDim != nil {
		if typ == "concat" {
			out.ConcatParam = &caffepb.ConcatParameter{ConcatDim: v0.ConcatDim}
		} else {
			drop("concat_dim")
		}
	}
	if v0.DetFgThreshold != nil {
		if typ == "window_data" {
			window().FgThreshold = v0.DetFgThreshold
		} else {
			drop("det_fg_threshold")
		}
	}
	if v0.DetBgThreshold != nil {
		if typ == "window_data" {
			window().BgThreshold = v0.DetBgThreshold
		} else {
			drop("det_bg_threshold")
		}
	}
	if v0.DetFgFraction != nil {
		if typ == "window_data" {
			window().FgFraction = v0.DetFgFraction
		} else {
			drop("det_fg_fraction")
		}
	}
	if v0.DetContextPad != nil {
		if typ == "window_data" {
			window().ContextPad = v0.DetContextPad
		} else {
			drop("det_context_pad")
		}
	}
	if v0.DetCropMode != nil {
		if typ == "window_data" {
			window().CropMode = v0.DetCropMode
		} else {
			drop("det_crop_mode")
		}
	}
	if v0.Hdf5OutputParam != nil {
		if typ == "hdf5_output" {
			out.Hdf5OutputParam = v0.Hdf5OutputParam
		} else {
			drop("hdf5_output_param")
		}
	}
	return out, nil
}

func needsDataUpgrade(net *caffepb.NetParameter) bool {
	for _, l := range net.GetLayers() {
		switch l.GetType() {
		case caffepb.V1LayerParameter_DATA:
			p := l.DataParam
			if p != nil && (p.Scale != nil || p.MeanFile != nil || p.CropSize != nil || p.Mirror != nil) {
				return true
			}
		case caffepb.V1LayerParameter_IMAGE_DATA:
			p := l.ImageDataParam
			if p != nil && (p.Scale != nil || p.MeanFile != nil || p.CropSize != nil || p.Mirror != nil) {
				return true
			}
		case caffepb.V1LayerParameter_WINDOW_DATA:
			p := l.WindowDataParam
			if p != nil && (p.Scale != nil || p.MeanFile != nil || p.CropSize != nil || p.Mirror != nil) {
				return true
			}
		}
	}
	return false
}

// upgradeDataTransform moves the deprecated transformation fields of V1
// Data, ImageData and WindowData layers into transform_param.
func upgradeDataTransform(net *caffepb.NetParameter) {
	move := func(l *caffepb.V1LayerParameter, scale **float32, mean **string, crop **uint32, mirror **bool) {
		if *scale == nil && *mean == nil && *crop == nil && *mirror == nil {
			return
		}
		if l.TransformParam == nil {
			l.TransformParam = &caffepb.TransformationParameter{}
		}
		t := l.TransformParam
		if *scale != nil {
			t.Scale, *scale = *scale, nil
		}
		if *mean != nil {
			t.MeanFile, *mean = *mean, nil
		}
		if *crop != nil {
			t.CropSize, *crop = *crop, nil
		}
		if *mirror != nil {
			t.Mirror, *mirror = *mirror, nil
		}
	}
	for _, l := range net.GetLayers() {
		switch l.GetType() {
		case caffepb.V1LayerParameter_DATA:
			if p := l.DataParam; p != nil {
				move(l, &p.Scale, &p.MeanFile, &p.CropSize, &p.Mirror)
			}
		case caffepb.V1LayerParameter_IMAGE_DATA:
			if p := l.ImageDataParam; p != nil {
				move(l, &p.Scale, &p.MeanFile, &p.CropSize, &p.Mirror)
			}
		case caffepb.V1LayerParameter_WINDOW_DATA:
			if p := l.WindowDataParam; p != nil {
				move(l, &p.Scale, &p.MeanFile, &p.CropSize, &p.Mirror)
			}
		}
	}
}

// v1TypeNames maps V1's layer type enum to the current type strings.
var v1TypeNames = map[caffepb.V1LayerParameter_LayerType]string{
	caffepb.V1LayerParameter_NONE:                       "",
	caffepb.V1LayerParameter_ABSVAL:                     "AbsVal",
	caffepb.V1LayerParameter_ACCURACY:                   "Accuracy",
	caffepb.V1LayerParameter_ARGMAX:                     "ArgMax",
	caffepb.V1LayerParameter_BNLL:                       "BNLL",
	caffepb.V1LayerParameter_CONCAT:                     "Concat",
	caffepb.V1LayerParameter_CONTRASTIVE_LOSS:           "ContrastiveLoss",
	caffepb.V1LayerParameter_CONVOLUTION:                "Convolution",
	caffepb.V1LayerParameter_DECONVOLUTION:              "Deconvolution",
	caffepb.V1LayerParameter_DATA:                       "Data",
	caffepb.V1LayerParameter_DROPOUT:                    "Dropout",
	caffepb.V1LayerParameter_DUMMY_DATA:                 "DummyData",
	caffepb.V1LayerParameter_EUCLIDEAN_LOSS:             "EuclideanLoss",
	caffepb.V1LayerParameter_ELTWISE:                    "Eltwise",
	caffepb.V1LayerParameter_EXP:                        "Exp",
	caffepb.V1LayerParameter_FLATTEN:                    "Flatten",
	caffepb.V1LayerParameter_HDF5_DATA:                  "HDF5Data",
	caffepb.V1LayerParameter_HDF5_OUTPUT:                "HDF5Output",
	caffepb.V1LayerParameter_HINGE_LOSS:                 "HingeLoss",
	caffepb.V1LayerParameter_IM2COL:                     "Im2col",
	caffepb.V1LayerParameter_IMAGE_DATA:                 "ImageData",
	caffepb.V1LayerParameter_INFOGAIN_LOSS:              "InfogainLoss",
	caffepb.V1LayerParameter_INNER_PRODUCT:              "InnerProduct",
	caffepb.V1LayerParameter_LRN:                        "LRN",
	caffepb.V1LayerParameter_MEMORY_DATA:                "MemoryData",
	caffepb.V1LayerParameter_MULTINOMIAL_LOGISTIC_LOSS:  "MultinomialLogisticLoss",
	caffepb.V1LayerParameter_MVN:                        "MVN",
	caffepb.V1LayerParameter_POOLING:                    "Pooling",
	caffepb.V1LayerParameter_POWER:                      "Power",
	caffepb.V1LayerParameter_RELU:                       "ReLU",
	caffepb.V1LayerParameter_SIGMOID:                    "Sigmoid",
	caffepb.V1LayerParameter_SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss",
	caffepb.V1LayerParameter_SILENCE:                    "Silence",
	caffepb.V1LayerParameter_SOFTMAX:                    "Softmax",
	caffepb.V1LayerParameter_SOFTMAX_LOSS:               "SoftmaxWithLoss",
	caffepb.V1LayerParameter_SPLIT:                      "Split",
	caffepb.V1LayerParameter_SLICE:                      "Slice",
	caffepb.V1LayerParameter_TANH:                       "TanH",
	caffepb.V1LayerParameter_WINDOW_DATA:                "WindowData",
	caffepb.V1LayerParameter_THRESHOLD:                  "Threshold",
}

// V1TypeName returns the current layer type string for a V1 layer type enum
// (CONVOLUTION → "Convolution"); ok is false for values Caffe does not know.
func V1TypeName(t caffepb.V1LayerParameter_LayerType) (name string, ok bool) {
	name, ok = v1TypeNames[t]
	return name, ok
}

// upgradeV1Net replaces net's V1 `layers` with `layer` entries.
func upgradeV1Net(net *caffepb.NetParameter, up *Upgrades) error {
	if len(net.Layer) > 0 {
		return fmt.Errorf("net defines both 'layer' and legacy 'layers' fields; " +
			"write every layer in the current form, layer { type: \"Type\" ... }, not layers { type: TYPE ... }")
	}
	out := make([]*caffepb.LayerParameter, 0, len(net.Layers))
	for i, v1 := range net.Layers {
		l, err := upgradeV1Layer(v1, up)
		if err != nil {
			return fmt.Errorf("layer %d (%q): %w", i, v1.GetName(), err)
		}
		out = append(out, l)
	}
	net.Layers = nil
	net.Layer = out
	return nil
}

// upgradeV1Layer converts one V1 layer as Caffe's UpgradeV1LayerParameter
// does. The V1 layer's messages are moved into the result, not copied.
func upgradeV1Layer(v1 *caffepb.V1LayerParameter, up *Upgrades) (*caffepb.LayerParameter, error) {
	l := &caffepb.LayerParameter{
		Bottom:  v1.Bottom,
		Top:     v1.Top,
		Name:    v1.Name,
		Include: v1.Include,
		Exclude: v1.Exclude,
		Blobs:   v1.Blobs,
	}
	if v1.Type != nil {
		name, ok := V1TypeName(v1.GetType())
		if !ok {
			return nil, fmt.Errorf("unknown V1 layer type %d", int32(v1.GetType()))
		}
		l.Type = proto.String(name)
	}
	param := func(i int) *caffepb.ParamSpec {
		for len(l.Param) <= i {
			l.Param = append(l.Param, &caffepb.ParamSpec{})
		}
		return l.Param[i]
	}
	for i, name := range v1.Param {
		param(i).Name = proto.String(name)
	}
	for i, mode := range v1.BlobShareMode {
		switch mode {
		case caffepb.V1LayerParameter_STRICT:
			param(i).ShareMode = caffepb.ParamSpec_STRICT.Enum()
		case caffepb.V1LayerParameter_PERMISSIVE:
			param(i).ShareMode = caffepb.ParamSpec_PERMISSIVE.Enum()
		default:
			return nil, fmt.Errorf("unknown blob_share_mode %d", int32(mode))
		}
	}
	for i, lr := range v1.BlobsLr {
		param(i).LrMult = proto.Float32(lr)
	}
	for i, d := range v1.WeightDecay {
		param(i).DecayMult = proto.Float32(d)
	}
	l.LossWeight = v1.LossWeight
	l.AccuracyParam = v1.AccuracyParam
	l.ArgmaxParam = v1.ArgmaxParam
	l.ConcatParam = v1.ConcatParam
	l.ContrastiveLossParam = v1.ContrastiveLossParam
	l.ConvolutionParam = v1.ConvolutionParam
	l.DataParam = v1.DataParam
	l.DropoutParam = v1.DropoutParam
	l.DummyDataParam = v1.DummyDataParam
	l.EltwiseParam = v1.EltwiseParam
	l.ExpParam = v1.ExpParam
	l.Hdf5DataParam = v1.Hdf5DataParam
	l.Hdf5OutputParam = v1.Hdf5OutputParam
	l.HingeLossParam = v1.HingeLossParam
	l.ImageDataParam = v1.ImageDataParam
	l.InfogainLossParam = v1.InfogainLossParam
	l.InnerProductParam = v1.InnerProductParam
	l.LrnParam = v1.LrnParam
	l.MemoryDataParam = v1.MemoryDataParam
	l.MvnParam = v1.MvnParam
	l.PoolingParam = v1.PoolingParam
	l.PowerParam = v1.PowerParam
	l.ReluParam = v1.ReluParam
	l.SigmoidParam = v1.SigmoidParam
	l.SoftmaxParam = v1.SoftmaxParam
	l.SliceParam = v1.SliceParam
	l.TanhParam = v1.TanhParam
	l.ThresholdParam = v1.ThresholdParam
	l.WindowDataParam = v1.WindowDataParam
	l.TransformParam = v1.TransformParam
	l.LossParam = v1.LossParam
	if v1.Layer != nil {
		up.Warnings = append(up.Warnings, fmt.Sprintf("layer %q: V1 layer also holds a V0 layer; ignored", v1.GetName()))
	}
	return l, nil
}

// upgradeInput turns the legacy input/input_shape/input_dim fields into one
// Input layer placed first. A net with input names but no shapes (an old
// .caffemodel) just loses the fields, as in Caffe.
func upgradeInput(net *caffepb.NetParameter) error {
	hasShape, hasDim := len(net.InputShape) > 0, len(net.InputDim) > 0
	if hasShape || hasDim {
		ip := &caffepb.InputParameter{}
		layer := &caffepb.LayerParameter{
			Name:       proto.String("input"),
			Type:       proto.String("Input"),
			InputParam: ip,
		}
		for i, name := range net.Input {
			layer.Top = append(layer.Top, name)
			if hasShape {
				if i >= len(net.InputShape) {
					return fmt.Errorf("input %q has no input_shape (%d inputs, %d input_shape entries)", name, len(net.Input), len(net.InputShape))
				}
				ip.Shape = append(ip.Shape, net.InputShape[i])
				continue
			}
			if 4*i+4 > len(net.InputDim) {
				return fmt.Errorf("input %q needs 4 input_dim values (%d inputs, %d input_dim values)", name, len(net.Input), len(net.InputDim))
			}
			s := &caffepb.BlobShape{}
			for _, d := range net.InputDim[4*i : 4*i+4] {
				s.Dim = append(s.Dim, int64(d))
			}
			ip.Shape = append(ip.Shape, s)
		}
		net.Layer = slices.Insert(net.Layer, 0, layer)
	}
	net.Input, net.InputShape, net.InputDim = nil, nil, nil
	return nil
}

// UpgradeSolver rewrites the legacy solver_type enum into the type string
// (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam) and upgrades inline nets
// (net_param, train_net_param, test_net_param) with UpgradeNet. Giving both
// solver_type and type is an error, as in Caffe.
func UpgradeSolver(sp *caffepb.SolverParameter) error {
	if sp.SolverType != nil {
		if sp.Type != nil {
			return fmt.Errorf("solver sets both the legacy solver_type (enum) and type (string); keep only type")
		}
		var t string
		switch sp.GetSolverType() {
		case caffepb.SolverParameter_SGD:
			t = "SGD"
		case caffepb.SolverParameter_NESTEROV:
			t = "Nesterov"
		case caffepb.SolverParameter_ADAGRAD:
			t = "AdaGrad"
		case caffepb.SolverParameter_RMSPROP:
			t = "RMSProp"
		case caffepb.SolverParameter_ADADELTA:
			t = "AdaDelta"
		case caffepb.SolverParameter_ADAM:
			t = "Adam"
		default:
			return fmt.Errorf("unknown solver_type %d", int32(sp.GetSolverType()))
		}
		sp.Type = proto.String(t)
		sp.SolverType = nil
	}
	nets := append([]*caffepb.NetParameter{sp.NetParam, sp.TrainNetParam}, sp.TestNetParam...)
	names := append([]string{"net_param", "train_net_param"}, slices.Repeat([]string{"test_net_param"}, len(sp.TestNetParam))...)
	for i, n := range nets {
		if n == nil {
			continue
		}
		if _, err := UpgradeNet(n); err != nil {
			return fmt.Errorf("%s: %w", names[i], err)
		}
	}
	return nil
}
