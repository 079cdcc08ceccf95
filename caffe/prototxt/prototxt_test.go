package prototxt

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

func mustNet(t *testing.T, path string) *caffepb.NetParameter {
	t.Helper()
	net, err := ParseNetFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func TestV1NetUpgradesToCurrentForm(t *testing.T) {
	want := mustNet(t, "testdata/lenet.prototxt")
	got := mustNet(t, "testdata/lenet_v1.prototxt")
	if diff := protoDiff(want, got); diff != "" {
		t.Errorf("upgraded V1 LeNet differs from the current-form LeNet (-want +got):\n%s", diff)
	}
	if len(got.Layers) != 0 {
		t.Errorf("legacy layers left after upgrade: %d", len(got.Layers))
	}
}

func TestV0NetUpgradesToCurrentForm(t *testing.T) {
	want := mustNet(t, "testdata/caffenet_v0_upgraded.prototxt")
	var warnings []string
	got, err := ParseNetFile("testdata/caffenet_v0.prototxt", WithWarnings(func(m string) { warnings = append(warnings, m) }))
	if err != nil {
		t.Fatal(err)
	}
	if diff := protoDiff(want, got); diff != "" {
		t.Errorf("upgraded V0 CaffeNet differs from the hand-upgraded one (-want +got):\n%s", diff)
	}
	if len(warnings) != 0 {
		t.Errorf("unexpected warnings: %q", warnings)
	}
}

func TestV0UpgradeWarnsAboutDroppedSettings(t *testing.T) {
	src := `layers { layer { name: "r" type: "relu" num_output: 3 } bottom: "x" top: "x" } input: "x"`
	var warnings []string
	net, err := ParseNet("warn.prototxt", []byte(src), WithWarnings(func(m string) { warnings = append(warnings, m) }))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "num_output") || !strings.Contains(warnings[0], `"r"`) {
		t.Errorf("warnings = %q, want one naming layer \"r\" and num_output", warnings)
	}
	if got := net.Layer[0].GetType(); got != "ReLU" {
		t.Errorf("type %q, want ReLU", got)
	}
}

func TestInputDimBecomesInputLayer(t *testing.T) {
	net := mustNet(t, "testdata/deploy_input_dim.prototxt")
	if len(net.Input)+len(net.InputDim)+len(net.InputShape) != 0 {
		t.Errorf("legacy input fields left: %v %v %v", net.Input, net.InputDim, net.InputShape)
	}
	if len(net.Layer) != 2 {
		t.Fatalf("got %d layers, want Input + fc", len(net.Layer))
	}
	in := net.Layer[0]
	if in.GetName() != "input" || in.GetType() != "Input" {
		t.Errorf("first layer %q of type %q, want input/Input", in.GetName(), in.GetType())
	}
	if !slicesEqual(in.Top, []string{"data", "rois"}) {
		t.Errorf("tops %v", in.Top)
	}
	wantShapes := [][]int64{{10, 3, 227, 227}, {1, 5, 1, 1}}
	for i, s := range in.GetInputParam().GetShape() {
		if !slicesEqual(s.Dim, wantShapes[i]) {
			t.Errorf("shape %d = %v, want %v", i, s.Dim, wantShapes[i])
		}
	}
	if net.Layer[1].GetName() != "fc" {
		t.Errorf("second layer %q, want fc", net.Layer[1].GetName())
	}
}

func TestInputShapeWithV1Layers(t *testing.T) {
	net := mustNet(t, "testdata/deploy_input_shape.prototxt")
	if len(net.Layer) != 2 || net.Layer[0].GetType() != "Input" || net.Layer[1].GetType() != "Softmax" {
		t.Fatalf("layers: %v", net.Layer)
	}
	if got := net.Layer[0].GetInputParam().GetShape()[0].GetDim(); !slicesEqual(got, []int64{1, 3, 224, 224}) {
		t.Errorf("input shape %v", got)
	}
}

func TestBadInputDims(t *testing.T) {
	_, err := ParseNet("bad.prototxt", []byte(`input: "a" input: "b" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 4 input_dim: 5`))
	if err == nil || !strings.Contains(err.Error(), `input "b"`) || !strings.HasPrefix(err.Error(), "bad.prototxt: ") {
		t.Errorf("err = %v, want one naming input \"b\" and the file", err)
	}
}

func TestBatchNormUpgrade(t *testing.T) {
	src := `layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x"
	  param { lr_mult: 1 } param { lr_mult: 1 decay_mult: 3 } param { name: "keep" lr_mult: 1 } }`
	net, err := ParseNet("bn.prototxt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range net.Layer[0].Param {
		if p.LrMult == nil || p.GetLrMult() != 0 || p.DecayMult == nil || p.GetDecayMult() != 0 {
			t.Errorf("param %d: lr_mult %v decay_mult %v, want 0 and 0", i, p.GetLrMult(), p.GetDecayMult())
		}
	}
	if net.Layer[0].Param[2].GetName() != "keep" {
		t.Errorf("param name lost")
	}
}

func TestV1ParamSpecs(t *testing.T) {
	src := `layers { name: "a" type: INNER_PRODUCT bottom: "x" top: "y"
	  param: "w" param: "b" blob_share_mode: PERMISSIVE
	  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0 loss_weight: 0.5 }
	  input: "x" input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1`
	net, err := ParseNet("v1.prototxt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	l := net.Layer[1]
	want := []*caffepb.ParamSpec{
		{Name: proto.String("w"), ShareMode: caffepb.ParamSpec_PERMISSIVE.Enum(), LrMult: proto.Float32(1), DecayMult: proto.Float32(1)},
		{Name: proto.String("b"), LrMult: proto.Float32(2), DecayMult: proto.Float32(0)},
	}
	if diff := protoDiff(&caffepb.LayerParameter{Param: want}, &caffepb.LayerParameter{Param: l.Param}); diff != "" {
		t.Errorf("param specs (-want +got):\n%s", diff)
	}
	if !slicesEqual(l.LossWeight, []float32{0.5}) {
		t.Errorf("loss_weight %v", l.LossWeight)
	}
}

func TestCaffeOnSparkFields(t *testing.T) {
	net := mustNet(t, "testdata/lenet_cos.prototxt")
	md := net.Layer[0]
	if md.GetSourceClass() != "com.yahoo.ml.caffe.ImageDataFrame" {
		t.Errorf("source_class %q", md.GetSourceClass())
	}
	mp := md.GetMemoryDataParam()
	if mp.GetShareInParallel() || mp.GetSource() != "file:///data/mnist_train_dataframe/" || !mp.GetImageEncoded() ||
		!slicesEqual(mp.GetDataframeColumnSelect(), []string{"data", "label"}) || mp.GetDataframeFormat() != "parquet" {
		t.Errorf("memory_data_param %v", mp)
	}
	cos := net.Layer[1].GetCosDataParam()
	if cos.GetBatchSize() != 100 || !cos.GetShuffle() || len(cos.GetTop()) != 2 {
		t.Fatalf("cos_data_param %v", cos)
	}
	if top := cos.GetTop()[0]; top.GetType() != caffepb.CoSDataParameter_RAW_IMAGE || top.GetTransformParam().GetScale() != 0.00390625 || top.GetSampleNumAxes() != 3 {
		t.Errorf("top 0: %v", top)
	}
	if top := cos.GetTop()[1]; top.GetType() != caffepb.CoSDataParameter_INT || top.GetSampleNumAxes() != 1 {
		t.Errorf("top 1: %v", top)
	}
}

// Every test net survives parse → print → parse unchanged, and printing is
// stable (printing the reparsed net gives the same text).
func TestRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*.prototxt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test nets: %v", err)
	}
	for _, f := range files {
		if strings.Contains(f, "solver") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			net := mustNet(t, f)
			text := FormatNet(net)
			again, err := ParseNet("printed", text)
			if err != nil {
				t.Fatalf("printed form does not parse: %v\n%s", err, text)
			}
			if !proto.Equal(net, again) {
				t.Errorf("round trip differs (-want +got):\n%s", protoDiff(net, again))
			}
			if text2 := FormatNet(again); string(text2) != string(text) {
				t.Errorf("printing is not stable:\n%s\n---\n%s", text, text2)
			}
		})
	}
}

func TestFormatLayout(t *testing.T) {
	net := &caffepb.NetParameter{
		Name: proto.String("n\"1\n\xc3\xa9"),
		Layer: []*caffepb.LayerParameter{{
			Name:   proto.String("c"),
			Type:   proto.String("Convolution"),
			Bottom: []string{"data"},
			Param:  []*caffepb.ParamSpec{{LrMult: proto.Float32(1)}, {LrMult: proto.Float32(2), DecayMult: proto.Float32(0)}},
			ConvolutionParam: &caffepb.ConvolutionParameter{
				NumOutput:    proto.Uint32(20),
				KernelSize:   []uint32{5},
				WeightFiller: &caffepb.FillerParameter{Type: proto.String("gaussian"), Std: proto.Float32(0.01)},
			},
			PoolingParam:   &caffepb.PoolingParameter{Pool: caffepb.PoolingParameter_AVE.Enum()},
			TransformParam: &caffepb.TransformationParameter{Scale: proto.Float32(0.00390625), MeanValue: []float32{104, 1e-8, 1.0 / 3}},
		}},
		ForceBackward: proto.Bool(true),
		InputDim:      []int32{-1},
	}
	// Fields print in field-number order (name 1, input_dim 4,
	// force_backward 5, layer 100; inside the layer transform_param 100
	// comes before convolution_param 106).
	want := `name: "n\"1\n\303\251"
input_dim: -1
force_backward: true
layer {
  name: "c"
  type: "Convolution"
  bottom: "data"
  param {
    lr_mult: 1
  }
  param {
    lr_mult: 2
    decay_mult: 0
  }
  transform_param {
    scale: 0.00390625
    mean_value: 104
    mean_value: 1e-08
    mean_value: 0.333333343
  }
  convolution_param {
    num_output: 20
    kernel_size: 5
    weight_filler {
      type: "gaussian"
      std: 0.01
    }
  }
  pooling_param {
    pool: AVE
  }
}
`
	if got := string(FormatNet(net)); got != want {
		t.Errorf("FormatNet:\n%s\nwant:\n%s", got, want)
	}
}

func TestSolverFile(t *testing.T) {
	sp, err := ParseSolverFile("testdata/lenet_solver.prototxt")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sp.GetNet(), filepath.Join("testdata", "lenet.prototxt"); got != want {
		t.Errorf("net = %q, want %q", got, want)
	}
	if sp.GetSnapshotPrefix() != "snapshots/lenet" || sp.GetSolverMode() != caffepb.SolverParameter_CPU ||
		sp.GetBaseLr() != 0.01 || sp.GetLrPolicy() != "inv" || sp.GetType() != "SGD" || sp.GetMaxIter() != 10000 {
		t.Errorf("solver: %v", sp)
	}
	if _, err := ParseNetFile(sp.GetNet()); err != nil {
		t.Errorf("resolved net does not load: %v", err)
	}
}

func TestLegacySolver(t *testing.T) {
	sp, err := ParseSolverFile("testdata/legacy_solver.prototxt")
	if err != nil {
		t.Fatal(err)
	}
	if sp.GetType() != "Nesterov" || sp.SolverType != nil {
		t.Errorf("type %q solver_type %v, want Nesterov and unset", sp.GetType(), sp.SolverType)
	}
	if sp.GetTrainNet() != filepath.Join("testdata", "lenet.prototxt") || len(sp.TestNet) != 1 || sp.TestNet[0] != filepath.Join("testdata", "lenet_v1.prototxt") {
		t.Errorf("train_net %q test_net %q", sp.GetTrainNet(), sp.TestNet)
	}
	if got, want := sp.GetSnapshotPrefix(), filepath.Join("testdata", "legacy_solver"); got != want {
		t.Errorf("default snapshot_prefix %q, want %q", got, want)
	}
	if !slicesEqual(sp.Stepvalue, []int32{1000, 2000}) || sp.GetRandomSeed() != 1701 {
		t.Errorf("stepvalue %v random_seed %d", sp.Stepvalue, sp.GetRandomSeed())
	}
}

func TestSolverTypes(t *testing.T) {
	for enum, want := range map[string]string{"SGD": "SGD", "NESTEROV": "Nesterov", "ADAGRAD": "AdaGrad", "RMSPROP": "RMSProp", "ADADELTA": "AdaDelta", "ADAM": "Adam"} {
		sp, err := ParseSolver("s", []byte("solver_type: "+enum))
		if err != nil {
			t.Fatal(err)
		}
		if sp.GetType() != want {
			t.Errorf("solver_type %s → %q, want %q", enum, sp.GetType(), want)
		}
	}
	if _, err := ParseSolver("both.prototxt", []byte(`type: "Adam" solver_type: ADAM`)); err == nil || !strings.Contains(err.Error(), "solver_type") {
		t.Errorf("solver_type with type: err = %v", err)
	}
}

func TestSolverInlineNetIsUpgraded(t *testing.T) {
	sp, err := ParseSolver("s", []byte(`net_param { layers { name: "r" type: RELU } }`))
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.GetNetParam().GetLayer()) != 1 || sp.GetNetParam().GetLayer()[0].GetType() != "ReLU" {
		t.Errorf("inline net not upgraded: %v", sp.GetNetParam())
	}
}

// A relative path that exists only from the working directory keeps Caffe's
// meaning; snapshot_prefix naming a directory gets the solver's stem.
func TestSolverPathsCaffeStyle(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"nets", "solvers", "snaps"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("nets/a.prototxt", `name: "a"`)
	write("solvers/b.prototxt", `name: "b"`)
	write("solvers/s.prototxt", `net: "nets/a.prototxt" test_net: "b.prototxt" test_net: "/abs/c" test_net: "hdfs://nn/d" snapshot_prefix: "snaps"`)
	t.Chdir(dir)
	sp, err := ParseSolverFile("solvers/s.prototxt")
	if err != nil {
		t.Fatal(err)
	}
	if sp.GetNet() != "nets/a.prototxt" {
		t.Errorf("net = %q, want the working-directory path", sp.GetNet())
	}
	want := []string{filepath.Join("solvers", "b.prototxt"), "/abs/c", "hdfs://nn/d"}
	if !slicesEqual(sp.TestNet, want) {
		t.Errorf("test_net = %q, want %q", sp.TestNet, want)
	}
	if sp.GetSnapshotPrefix() != filepath.Join("snaps", "s") {
		t.Errorf("snapshot_prefix = %q", sp.GetSnapshotPrefix())
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, src  string
		line, col  int
		msgContain string
	}{
		{"unknown field", "name: \"x\"\nlayer {\n  nmae: \"conv\"\n}\n", 3, 3, `unknown field: nmae (did you mean "name"`},
		{"bad enum", "layer {\n  pooling_param { pool: MAXIMUM }\n}", 2, 25, "MAXIMUM"},
		{"unterminated string", "name: \"abc\n", 1, 7, ""},
		{"missing brace", "layer {\n  name: \"a\"\n", 3, 1, ""},
		{"wrong type", "force_backward: 12x", 1, 17, ""},
		{"string for int", "layer { convolution_param { num_output: \"ten\" } }", 1, 41, ""},
		{"negative uint", "layer { convolution_param { num_output: -1 } }", 1, 41, ""},
		{"duplicate singular", "name: \"a\"\nname: \"b\"", 2, 1, "name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseNet("net.prototxt", []byte(c.src))
			pe, ok := IsParseError(err)
			if !ok {
				t.Fatalf("err = %v (%T), want *ParseError", err, err)
			}
			if pe.File != "net.prototxt" || pe.Line != c.line || pe.Column != c.col {
				t.Errorf("position %s:%d:%d, want net.prototxt:%d:%d (%v)", pe.File, pe.Line, pe.Column, c.line, c.col, err)
			}
			if !strings.Contains(pe.Msg, c.msgContain) {
				t.Errorf("message %q lacks %q", pe.Msg, c.msgContain)
			}
			if want := "net.prototxt:" + itoa(c.line) + ":" + itoa(c.col) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
			}
		})
	}
}

func TestUpgradeErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"both forms", `layer { name: "a" } layers { name: "b" type: RELU }`, "both 'layer' and legacy 'layers'"},
		{"unknown V0 type", `layers { layer { name: "x" type: "warp" } }`, `unknown V0 layer type "warp"`},
		{"V0 unknown bottom", `layers { layer { name: "x" type: "relu" } bottom: "nowhere" }`, `unknown bottom blob "nowhere"`},
		{"padding into relu", `input: "d" layers { layer { name: "p" type: "padding" pad: 1 } bottom: "d" top: "q" }
		  layers { layer { name: "r" type: "relu" } bottom: "q" top: "q" }`, `only conv and pool`},
		{"V1 unknown enum value", `layers { name: "odd" type: 99 }`, `layer 0 ("odd"): unknown V1 layer type 99`},
		{"missing input_shape", `input: "a" input: "b" input_shape { dim: 1 }`, `input "b" has no input_shape`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseNet("up.prototxt", []byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "up.prototxt: ") {
				t.Errorf("err = %v, want one starting with the file and containing %q", err, c.want)
			}
		})
	}
}

func TestRequiredFieldMissing(t *testing.T) {
	_, err := ParseNet("clip.prototxt", []byte(`layer { name: "c" type: "Clip" clip_param { min: 0 } }`))
	pe, ok := IsParseError(err)
	if !ok || !strings.Contains(pe.Msg, "max") {
		t.Errorf("err = %v, want a ParseError naming the missing max", err)
	}
}

func TestV1TypeNamesCoverEnum(t *testing.T) {
	vals := caffepb.V1LayerParameter_NONE.Descriptor().Values()
	for i := 0; i < vals.Len(); i++ {
		v := caffepb.V1LayerParameter_LayerType(vals.Get(i).Number())
		name, ok := V1TypeName(v)
		if !ok || (v != caffepb.V1LayerParameter_NONE && name == "") {
			t.Errorf("V1 type %v has no name", v)
		}
	}
	if _, ok := V1TypeName(99); ok {
		t.Errorf("V1TypeName(99) ok")
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func itoa(i int) string { return strconv.Itoa(i) }

// protoDiff returns "" when a and b are equal, else their first differing
// printed lines.
func protoDiff(a, b proto.Message) string {
	if proto.Equal(a, b) {
		return ""
	}
	la := strings.Split(string(Format(a)), "\n")
	lb := strings.Split(string(Format(b)), "\n")
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n-%s\n+%s", i+1, x, y)
		}
	}
	return "messages differ in fields the printer does not show"
}

func TestNetNeedsUpgrade(t *testing.T) {
	for _, c := range []struct {
		src  string
		want bool
	}{
		{`layer { name: "a" type: "ReLU" }`, false},
		{`layer { name: "bn" type: "BatchNorm" param {} param {} }`, false},
		{`layer { name: "bn" type: "BatchNorm" param {} param {} param {} }`, true},
		{`layers { name: "a" type: RELU }`, true},
		{`layers { layer { name: "a" type: "relu" } }`, true},
		{`input: "x"`, true},
	} {
		var net caffepb.NetParameter
		if err := Unmarshal("n", []byte(c.src), &net); err != nil {
			t.Fatal(err)
		}
		if got := NetNeedsUpgrade(&net); got != c.want {
			t.Errorf("NetNeedsUpgrade(%s) = %v, want %v", c.src, got, c.want)
		}
		if _, err := UpgradeNet(&net); err != nil {
			t.Fatal(err)
		}
		// Like Caffe's check, a BatchNorm layer with three ParamSpecs always
		// counts as needing the (idempotent) upgrade.
		if NetNeedsUpgrade(&net) && c.src != `layer { name: "bn" type: "BatchNorm" param {} param {} param {} }` {
			t.Errorf("%s still needs an upgrade after UpgradeNet", c.src)
		}
	}
}

func TestUpgradesReportsSteps(t *testing.T) {
	var net caffepb.NetParameter
	src := `input: "d" input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1
	  layers { layer { name: "x" type: "data" scale: 2 } top: "y" }`
	if err := Unmarshal("n", []byte(src), &net); err != nil {
		t.Fatal(err)
	}
	up, err := UpgradeNet(&net)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(up.Steps, ","); got != "V0,V1,input" {
		t.Errorf("steps %q, want V0,V1,input", got)
	}
	if len(net.Layer) != 2 || net.Layer[1].GetTransformParam().GetScale() != 2 {
		t.Errorf("net %s", Format(&net))
	}
}

func TestUnmarshalAnyMessage(t *testing.T) {
	var st caffepb.SolverState
	if err := Unmarshal("s", []byte("iter: 7 history { data: [1, 2] }"), &st); err != nil {
		t.Fatal(err)
	}
	if st.GetIter() != 7 || len(st.History[0].Data) != 2 {
		t.Errorf("parsed %v", &st)
	}
	if err := Unmarshal("s", []byte("iter: x"), &st); err == nil {
		t.Error("bad int accepted")
	}
}
