package network

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// DataAsMemory returns a copy of param in which every `Data` layer (a
// database-backed layer whose sample shape Caffe learns by reading the
// first record) becomes a MemoryData layer with the same name, tops, rules,
// transform_param, batch size and source, and the sample shape given here
// (channels, height, width), cropped to transform_param.crop_size as the
// Data layer would be. It lets shapes be inferred without the database.
// It returns the number of layers replaced.
func DataAsMemory(param *caffepb.NetParameter, sample [3]int) (*caffepb.NetParameter, int, error) {
	out := proto.CloneOf(param)
	n := 0
	for _, lp := range out.GetLayer() {
		if lp.GetType() != "Data" {
			continue
		}
		dp := lp.GetDataParam()
		if dp.GetBatchSize() == 0 {
			return nil, 0, fmt.Errorf("layer %q: data_param batch_size is not set", lp.GetName())
		}
		c, h, w := sample[0], sample[1], sample[2]
		if crop := int(lp.GetTransformParam().GetCropSize()); crop > 0 {
			if crop > h || crop > w {
				return nil, 0, fmt.Errorf("layer %q: crop_size %d exceeds the sample's %dx%d", lp.GetName(), crop, h, w)
			}
			h, w = crop, crop
		}
		lp.Type = proto.String("MemoryData")
		lp.MemoryDataParam = &caffepb.MemoryDataParameter{
			BatchSize: proto.Uint32(dp.GetBatchSize()),
			Channels:  proto.Uint32(uint32(c)),
			Height:    proto.Uint32(uint32(h)),
			Width:     proto.Uint32(uint32(w)),
			Source:    dp.Source,
		}
		lp.DataParam = nil
		n++
	}
	return out, n, nil
}
