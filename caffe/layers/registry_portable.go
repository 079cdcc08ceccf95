package layers

// portable lists the layer types whose CAFFE implementation computes only
// through kernels.Backend and the blobs' device accessors, so that on a net
// of any device they run on that device. The others run on the host, with
// their blobs synced around them.
var portable = []string{
	"Accuracy", // labels checked on the host, counted on the device
	"BatchNorm",
	"Bias",
	"Concat",
	"Dropout", // the mask is drawn by the backend from a key the host sends
	"Eltwise", // SUM, PROD and MAX
	"Convolution",
	"Deconvolution",
	"Flatten", // the top shares the bottom's memories, host and device
	"Reshape", // as Flatten
	"InnerProduct",
	"LRN",
	"Pooling",
	"ReLU",
	"Scale",
	"Sigmoid",
	"Softmax",
	"SoftmaxWithLoss",
	"TanH",
	"Split", // the tops share the bottom's data; the diffs are summed on the device
}
