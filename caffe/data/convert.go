package data

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/db"
	"github.com/gocaffe/gocaffe/caffe/imgcodec"
)

// commitEvery is how many records Caffe's conversion tools put per
// transaction.
const commitEvery = 1000

// MNISTFiles returns the image and label IDX files of an MNIST set ("train"
// or "test") in dir; an empty dir is resolved as ResolveMNISTDir does.
func MNISTFiles(dir, set string) (images, labels string, err error) {
	var imgName, lblName string
	switch set {
	case "train":
		imgName, lblName = mnistTrainImages, mnistTrainLabels
	case "test":
		imgName, lblName = mnistTestImages, mnistTestLabels
	default:
		return "", "", fmt.Errorf("mnist: set %q must be train or test", set)
	}
	if dir == "" {
		if dir, err = ResolveMNISTDir(); err != nil {
			return "", "", err
		}
	}
	return filepath.Join(dir, imgName), filepath.Join(dir, lblName), nil
}

// ConvertMNIST writes MNIST IDX files (gzipped or not) into w as Caffe's
// convert_mnist_data does: keys %08d, Datums 1×rows×cols of raw bytes with
// their label. It returns the number of records.
func ConvertMNIST(imagesPath, labelsPath string, w db.Writer) (int, error) {
	pix, dims, err := readIDXFile(imagesPath, 0x08, 3)
	if err != nil {
		return 0, err
	}
	lbl, ldims, err := readIDXFile(labelsPath, 0x08, 1)
	if err != nil {
		return 0, err
	}
	if ldims[0] != dims[0] {
		return 0, fmt.Errorf("mnist: %s has %d labels but %s has %d images", labelsPath, ldims[0], imagesPath, dims[0])
	}
	per := dims[1] * dims[2]
	for i := 0; i < dims[0]; i++ {
		d := &caffepb.Datum{Channels: proto.Int32(1), Height: proto.Int32(int32(dims[1])), Width: proto.Int32(int32(dims[2])),
			Data: pix[i*per : (i+1)*per], Label: proto.Int32(int32(lbl[i]))}
		v, err := proto.Marshal(d)
		if err != nil {
			return i, err
		}
		if err := w.Put([]byte(fmt.Sprintf("%08d", i)), v); err != nil {
			return i, err
		}
		if (i+1)%commitEvery == 0 {
			if err := w.Commit(); err != nil {
				return i, err
			}
		}
	}
	return dims[0], w.Commit()
}

// ListEntry is one line of an image list file: a path and its label.
type ListEntry struct {
	Path  string
	Label int
	Line  int
}

// ReadImageList reads a list file of "path label" lines, split at the last
// space as Caffe does (paths may hold spaces); blank lines are skipped.
func ReadImageList(path string) ([]ListEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image list: %w", err)
	}
	defer f.Close()
	var out []ListEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" {
			continue
		}
		i := strings.LastIndexAny(line, " \t")
		if i < 0 {
			return nil, fmt.Errorf("%s:%d: %q has no label (want \"path label\")", path, n, line)
		}
		lbl, err := strconv.Atoi(line[i+1:])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: label %q is not an integer", path, n, line[i+1:])
		}
		out = append(out, ListEntry{Path: strings.TrimSpace(line[:i]), Label: lbl, Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no images listed", path)
	}
	return out, nil
}

// ImageSetOptions are convert_imageset's flags.
type ImageSetOptions struct {
	Root             string // prefix of every listed path
	Gray             bool
	Shuffle          bool
	Seed             uint64
	ResizeH, ResizeW int
	Encoded          bool   // store encoded images
	EncodeType       string // "" keeps the file's own encoding; else png or jpg
	CheckSize        bool
}

// ConvertImageSet writes the images a list file names into w as Caffe's
// convert_imageset does: keys %08d_<path>; raw C×H×W Datums, or encoded
// ones (the file's bytes when no resize or re-encoding is asked).
func ConvertImageSet(list string, opt ImageSetOptions, w db.Writer) (int, error) {
	entries, err := ReadImageList(list)
	if err != nil {
		return 0, err
	}
	if opt.Shuffle {
		r := rand.New(rand.NewPCG(opt.Seed, 0))
		r.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	}
	mode := ForceColor
	if opt.Gray {
		mode = ForceGray
	}
	var size [3]int
	for i, e := range entries {
		d, err := imageDatum(filepath.Join(opt.Root, e.Path), e.Label, mode, opt)
		if err != nil {
			return i, fmt.Errorf("%s:%d: %w", list, e.Line, err)
		}
		if opt.CheckSize && !d.GetEncoded() {
			s := [3]int{int(d.GetChannels()), int(d.GetHeight()), int(d.GetWidth())}
			if i == 0 {
				size = s
			} else if s != size {
				return i, fmt.Errorf("%s:%d: %s is %v, the first image is %v (-check_size)", list, e.Line, e.Path, s, size)
			}
		}
		v, err := proto.Marshal(d)
		if err != nil {
			return i, err
		}
		if err := w.Put([]byte(fmt.Sprintf("%08d_%s", i, e.Path)), v); err != nil {
			return i, err
		}
		if (i+1)%commitEvery == 0 {
			if err := w.Commit(); err != nil {
				return i, err
			}
		}
	}
	return len(entries), w.Commit()
}

func imageDatum(path string, label int, mode ColorMode, opt ImageSetOptions) (*caffepb.Datum, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	if ext == "jpeg" {
		ext = "jpg"
	}
	resize := opt.ResizeH > 0 && opt.ResizeW > 0
	if opt.Encoded && !resize && (opt.EncodeType == "" || opt.EncodeType == ext) {
		if _, err := imgcodec.Decode(raw); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return &caffepb.Datum{Data: raw, Label: proto.Int32(int32(label)), Encoded: proto.Bool(true)}, nil
	}
	img, err := imgcodec.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := mode.channels()
	h, w := img.Bounds().Dy(), img.Bounds().Dx()
	pix := make([]byte, c*h*w)
	imgcodec.WriteCHW(pix, img, c)
	if resize {
		out := make([]byte, c*opt.ResizeH*opt.ResizeW)
		imgcodec.ResizeCHW(out, opt.ResizeH, opt.ResizeW, pix, c, h, w)
		pix, h, w = out, opt.ResizeH, opt.ResizeW
	}
	if !opt.Encoded {
		return &caffepb.Datum{Channels: proto.Int32(int32(c)), Height: proto.Int32(int32(h)), Width: proto.Int32(int32(w)),
			Data: pix, Label: proto.Int32(int32(label))}, nil
	}
	enc := opt.EncodeType
	if enc == "" {
		enc = ext
	}
	b, err := encodeCHW(pix, c, h, w, enc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &caffepb.Datum{Data: b, Label: proto.Int32(int32(label)), Encoded: proto.Bool(true)}, nil
}

// encodeCHW encodes BGR or gray planes as PNG or JPEG (quality 95, OpenCV's
// default).
func encodeCHW(pix []byte, c, h, w int, typ string) ([]byte, error) {
	var img image.Image
	if c == 1 {
		g := image.NewGray(image.Rect(0, 0, w, h))
		copy(g.Pix, pix)
		img = g
	} else {
		m := image.NewNRGBA(image.Rect(0, 0, w, h))
		plane := h * w
		for i := 0; i < plane; i++ {
			m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2], m.Pix[4*i+3] = pix[2*plane+i], pix[plane+i], pix[i], 255
		}
		img = m
	}
	var buf bytes.Buffer
	var err error
	switch typ {
	case "png":
		err = png.Encode(&buf, img)
	case "jpg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	default:
		return nil, fmt.Errorf("encode_type %q: want png or jpg", typ)
	}
	return buf.Bytes(), err
}

// ComputeMean returns the mean image of a database of Datums as Caffe's
// compute_image_mean writes it (a BlobProto 1×C×H×W), and the per-channel
// means it prints.
func ComputeMean(b db.Backend, path string) (*caffepb.BlobProto, []float64, error) {
	src, err := OpenDB[float32](DBOptions{Backend: b, Path: path, Transform: Transform{Scale: 1}, MaxBadShare: 1e-12})
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	c, h, w := src.ImageShape()
	sum := make([]float64, c*h*w)
	for i := 0; i < src.Len(); i++ {
		im, err := src.read()
		if err != nil {
			return nil, nil, err
		}
		for j := range sum {
			sum[j] += im.pixel(0, j)
		}
		if i+1 < src.Len() {
			if err := src.advance(); err != nil {
				return nil, nil, err
			}
		}
	}
	mean := make([]float32, len(sum))
	ch := make([]float64, c)
	for j, v := range sum {
		m := v / float64(src.Len())
		mean[j] = float32(m)
		ch[j/(h*w)] += m / float64(h*w)
	}
	bp := &caffepb.BlobProto{Num: proto.Int32(1), Channels: proto.Int32(int32(c)), Height: proto.Int32(int32(h)),
		Width: proto.Int32(int32(w)), Data: mean}
	return bp, ch, nil
}
