package layers

import (
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// registerCommon adds the activations, losses, data and utility layers: one r.Register line each.
func registerCommon(r *layer.Registry) error {
	for _, err := range []error{
		r.Register("ReLU", newReLU[float32], newReLU[float64]),
		r.Register("PReLU", newPReLU[float32], newPReLU[float64]),
		r.Register("ELU", newELU[float32], newELU[float64]),
		r.Register("Sigmoid", newActivation[float32](kernels.Sigmoid), newActivation[float64](kernels.Sigmoid)),
		r.Register("TanH", newActivation[float32](kernels.TanH), newActivation[float64](kernels.TanH)),
		r.Register("AbsVal", newAbsVal[float32], newAbsVal[float64]),
		r.Register("Power", newPower[float32], newPower[float64]),
		r.Register("Exp", newExp[float32], newExp[float64]),
		r.Register("Log", newLog[float32], newLog[float64]),
		r.Register("BNLL", newBNLL[float32], newBNLL[float64]),
		r.Register("Threshold", newThreshold[float32], newThreshold[float64]),
		r.Register("Dropout", newDropout[float32], newDropout[float64]),
		r.Register("Softmax", newSoftmax[float32], newSoftmax[float64]),
		r.Register("SoftmaxWithLoss", newSoftmaxWithLoss[float32], newSoftmaxWithLoss[float64]),
		r.Register("Accuracy", newAccuracy[float32], newAccuracy[float64]),
		r.Register("Input", newInput[float32], newInput[float64]),
		r.Register("DummyData", newDummyData[float32], newDummyData[float64]),
		r.Register("MemoryData", newMemoryData[float32], newMemoryData[float64]),
		r.Register("CoSData", newCoSData[float32], newCoSData[float64]), // CaffeOnSpark (cos_data.go)
		// Caffe's database and file data layers (data_layer.go, image_data_layer.go).
		r.Register("Data", newData[float32], newData[float64]),
		r.Register("ImageData", newImageData[float32], newImageData[float64]),
		// Caffe's HDF5 layers (hdf5_layers.go, files through caffe/hdf5io).
		r.Register("HDF5Data", newHDF5Data[float32], newHDF5Data[float64]),
		r.Register("HDF5Output", newHDF5Output[float32], newHDF5Output[float64]),
		r.Register("Split", newSplit[float32], newSplit[float64]),
		r.Register("Flatten", newFlatten[float32], newFlatten[float64]),
		r.Register("Reshape", newReshape[float32], newReshape[float64]),
		r.Register("Concat", newConcat[float32], newConcat[float64]),
		r.Register("Slice", newSlice[float32], newSlice[float64]),
		r.Register("Eltwise", newEltwise[float32], newEltwise[float64]),
		r.Register("Silence", newSilence[float32], newSilence[float64]),
		r.Register("Bias", newBias[float32], newBias[float64]),
		r.Register("Scale", newScale[float32], newScale[float64]),
		r.Register("BatchNorm", newBatchNorm[float32], newBatchNorm[float64]),
		r.Register("SigmoidCrossEntropyLoss", newSigmoidCrossEntropyLoss[float32], newSigmoidCrossEntropyLoss[float64]),
		r.Register("EuclideanLoss", newEuclideanLoss[float32], newEuclideanLoss[float64]),
		r.Register("HingeLoss", newHingeLoss[float32], newHingeLoss[float64]),
		r.Register("ContrastiveLoss", newContrastiveLoss[float32], newContrastiveLoss[float64]),
		r.Register("InfogainLoss", newInfogainLoss[float32], newInfogainLoss[float64]),
		r.Register("MultinomialLogisticLoss", newMultinomialLogisticLoss[float32], newMultinomialLogisticLoss[float64]),
		r.Register("ArgMax", newArgMax[float32], newArgMax[float64]),
		r.Register("Crop", newCrop[float32], newCrop[float64]),
		r.Register("Embed", newEmbed[float32], newEmbed[float64]),
		r.Register("Tile", newTile[float32], newTile[float64]),
		r.Register("Reduction", newReduction[float32], newReduction[float64]),
		r.Register("Clip", newClip[float32], newClip[float64]),
		r.Register("Swish", newSwish[float32], newSwish[float64]),
		r.Register("MVN", newMVN[float32], newMVN[float64]),
		r.Register("Parameter", newParameter[float32], newParameter[float64]),
		r.Register("LSTM", newLSTM[float32], newLSTM[float64]),
		r.Register("RNN", newRNN[float32], newRNN[float64]),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
