// Package arrowio turns Arrow record batches (the partitions the Spark shim
// streams to goexec as Arrow IPC) into training batches for GoCaffe's data
// layers.
//
// A Spec says, per top of the data layer, which column feeds it and how
// (Kind). Ready-made specs cover the supported schemas:
//
//   - EncodedImageSpec: PNG/JPEG bytes + label; images decode in goexec,
//     in parallel over all cores.
//   - FloatArraySpec: list<float32> (or any numeric list, or
//     fixed_size_list) + optional list<int> shape + label.
//   - RawImageSpec: MNIST-style uint8 pixels (binary or list<uint8>) with
//     optional channels/height/width columns.
//   - ImageDataFrameSpec: CaffeOnSpark's ImageDataFrame (label string,
//     data binary; optional id, channels, height, width, encoded).
//   - CoSDataSpec: CaffeOnSpark's DataFrameSource typed tops (STRING, INT,
//     FLOAT, INT_ARRAY, FLOAT_ARRAY, RAW_IMAGE, ENCODED_IMAGE,
//     ENCODED_IMAGE_WITH_DIM).
//
// FromLayer picks the spec from a data layer as CaffeOnSpark's users write
// it (MemoryData with source_class ImageDataFrame, CoSData with
// DataFrameSource), with its transform_param.
//
// Byte columns may be binary, large binary, fixed-size binary, string, or a
// list of uint8 or int8 (Spark writes array<byte> as list<int8>).
//
// Labels and other scalars may be integer, float or numeric-string columns;
// a value that is not a finite number is an error naming the column, the
// row (counted from the start of the partition), the row's sample id when
// the batch has a string `id` column (CaffeOnSpark's), and the value. Such
// errors are *RowError.
//
// ReadStream (or a Builder fed batch by batch) decodes a partition into a
// Dataset. Where the layout allows (list<float32> or raw uint8 rows of equal
// length laid end to end), the Dataset views the record batch's buffers in
// place instead of copying them; everything else it allocates from the
// memory.Allocator it was given. A malformed stream or batch is an error,
// never a panic.
//
// Decoded images use Caffe's layout and OpenCV's conventions, so numbers
// match what Caffe and CaffeOnSpark feed a net: C×H×W planes, color in
// B, G, R order, grayscale by OpenCV's weights.
//
// A Cache keeps datasets across training rounds, keyed by dataset and
// partition. A Sampler draws batches from a Dataset into a data layer's
// tops (it implements layer.BatchSource), applying transform_param.
//
// # Uneven partitions
//
// Spark's partitions rarely hold the same number of rows. GoCaffe never
// truncates them to the smallest: every rank trains on all of its own
// partition, and all ranks run the same number of iterations. The default
// policy, UnevenEpochs, walks the partition one epoch at a time (each
// sample once per epoch, reshuffled each epoch when shuffling); a rank with
// a smaller partition completes more epochs in the same iterations. The
// alternative, WithReplacement, draws each sample uniformly at random.
// Either way each iteration's global batch is clusterSize × batch_size
// samples, and the partition sizes are logged so the imbalance is visible.
package arrowio
