package layers

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/imgcodec"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// newImageData builds Caffe's ImageData layer: tops data (batch_size, C, H,
// W) and optionally label, from a list file of "path label" lines
// (image_data_param). C is 3 (BGR) when is_color, else 1; H×W is
// new_height×new_width when both are set, else the first listed image's
// size, cropped by transform_param.crop_size. It is fed like MemoryData:
// caffe/data.Attach opens the list as its source.
func newImageData[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetImageDataParam()
	if p == nil || p.GetSource() == "" {
		return nil, fmt.Errorf("image_data_param.source (the list file) is required")
	}
	batch := int(p.GetBatchSize())
	if batch <= 0 {
		return nil, fmt.Errorf("image_data_param batch_size must be positive, got %d", batch)
	}
	if (p.GetNewHeight() > 0) != (p.GetNewWidth() > 0) {
		return nil, fmt.Errorf("image_data_param: set both new_height and new_width, or neither")
	}
	c := 1
	if p.GetIsColor() {
		c = 3
	}
	h, w := int(p.GetNewHeight()), int(p.GetNewWidth())
	if h == 0 {
		path, err := firstListed(p.GetSource())
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(p.GetRootFolder() + path)
		if err != nil {
			return nil, fmt.Errorf("image_data_param: first image: %w", err)
		}
		img, err := imgcodec.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("image_data_param: first image %s: %w", p.GetRootFolder()+path, err)
		}
		h, w = img.Bounds().Dy(), img.Bounds().Dx()
	}
	if cs := int(ctx.Param.GetTransformParam().GetCropSize()); cs > 0 {
		if cs > h || cs > w {
			return nil, fmt.Errorf("crop_size %d is larger than the %d×%d images", cs, h, w)
		}
		h, w = cs, cs
	}
	return &memoryData[T]{counts: counts{0, 0, 1, 2}, name: ctx.Param.GetName(), typ: "ImageData",
		shape: [4]int{batch, c, h, w}}, nil
}

// firstListed returns the path on the first line of a list file.
func firstListed(list string) (string, error) {
	f, err := os.Open(list)
	if err != nil {
		return "", fmt.Errorf("image_data_param.source: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" {
			continue
		}
		i := strings.LastIndexAny(line, " \t")
		if i < 0 {
			return "", fmt.Errorf("%s:%d: %q has no label (want \"path label\")", list, n, line)
		}
		return strings.TrimSpace(line[:i]), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", list, err)
	}
	return "", fmt.Errorf("%s: no images listed", list)
}
