package layers

// portable lists the layer types whose CAFFE implementation computes only
// through kernels.Backend and the blobs' device accessors, so that on a net
// of any device they run on that device. The others run on the host, with
// their blobs synced around them.
var portable = []string{
	"Bias",
	"Concat",
	"Dropout", // the mask is drawn on the host and sent to the device
	"Eltwise", // SUM on the device; PROD and MAX read and write host memory
	"Convolution",
	"Deconvolution",
	"InnerProduct",
	"LRN",
	"Pooling",
	"ReLU",
	"Scale",
	"Softmax",
	"SoftmaxWithLoss",
}
