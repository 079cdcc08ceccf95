// Package imgcodec decodes PNG and JPEG images as Caffe's OpenCV calls do
// (cv::imdecode / cv::imread): planes in channel, row, column order, colour
// channels blue, green, red; grayscale from a colour JPEG is the JPEG's own
// luma, as libjpeg hands it to OpenCV. It also resizes as cv::resize with
// INTER_LINEAR. Caffe's data layers, the conversion tools and arrowio's
// image columns share it.
package imgcodec

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

// ErrUnknownImageFormat is returned for encoded image bytes that are neither
// PNG nor JPEG.
var ErrUnknownImageFormat = errors.New("unknown image format (want PNG or JPEG)")

var (
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
	jpegMagic = []byte{0xff, 0xd8, 0xff}
)

// Decode decodes PNG or JPEG bytes, chosen by their magic number (no
// global format registry is consulted).
func Decode(b []byte) (image.Image, error) {
	switch {
	case bytes.HasPrefix(b, pngMagic):
		return png.Decode(bytes.NewReader(b))
	case bytes.HasPrefix(b, jpegMagic):
		return jpeg.Decode(bytes.NewReader(b))
	default:
		return nil, ErrUnknownImageFormat
	}
}

// Channels returns the channel count an image decodes to when the
// caller asked for want channels: 1 (grayscale), 3 (BGR) or 0 (unchanged:
// 1 for grayscale images, 3 for everything else; alpha is dropped).
func Channels(img image.Image, want int) int {
	if want == 1 || want == 3 {
		return want
	}
	switch img.ColorModel() {
	case color.GrayModel, color.Gray16Model:
		return 1
	}
	if p, ok := img.(*image.Paletted); ok {
		gray := true
		for _, c := range p.Palette {
			r, g, b, _ := c.RGBA()
			if r != g || g != b {
				gray = false
				break
			}
		}
		if gray {
			return 1
		}
	}
	return 3
}

// WriteCHW writes img into dst as uint8 planes in Caffe's layout: channel,
// then row, then column; color channels in OpenCV's order (blue, green,
// red), so a net trained on Caffe's OpenCV-decoded images sees the same
// numbers. Grayscale from a colour JPEG is its luma, as libjpeg gives it to
// OpenCV; from other colour images OpenCV's weights (0.299 R + 0.587 G +
// 0.114 B). dst must hold channels*H*W bytes.
func WriteCHW(dst []byte, img image.Image, channels int) {
	bnd := img.Bounds()
	w, h := bnd.Dx(), bnd.Dy()
	plane := w * h
	switch src := img.(type) {
	case *image.YCbCr:
		if writeYCbCr(dst, src, channels) {
			return
		}
	case *image.Gray:
		if channels == 1 {
			for y := 0; y < h; y++ {
				copy(dst[y*w:(y+1)*w], src.Pix[y*src.Stride:y*src.Stride+w])
			}
			return
		}
		for y := 0; y < h; y++ {
			row := src.Pix[y*src.Stride : y*src.Stride+w]
			for c := 0; c < 3; c++ {
				copy(dst[c*plane+y*w:c*plane+(y+1)*w], row)
			}
		}
		return
	case *image.NRGBA:
		if channels == 3 {
			for y := 0; y < h; y++ {
				row := src.Pix[y*src.Stride : y*src.Stride+4*w]
				for x := 0; x < w; x++ {
					i := y*w + x
					dst[i] = row[4*x+2]
					dst[plane+i] = row[4*x+1]
					dst[2*plane+i] = row[4*x]
				}
			}
			return
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			c := color.NRGBAModel.Convert(img.At(bnd.Min.X+x, bnd.Min.Y+y)).(color.NRGBA)
			if channels == 1 {
				// OpenCV 5.1 PNG grayscale: fixed-point BGR2GRAY weights, truncated.
				dst[i] = uint8((uint32(c.R)*4899 + uint32(c.G)*9617 + uint32(c.B)*1868) >> 14)
				continue
			}
			dst[i] = c.B
			dst[plane+i] = c.G
			dst[2*plane+i] = c.R
		}
	}
}

// ResizeCHW resamples src (c×sh×sw, uint8 planes) into dst (c×dh×dw) with
// bilinear interpolation, pixel centres aligned as in OpenCV's INTER_LINEAR.
func ResizeCHW(dst []byte, dh, dw int, src []byte, c, sh, sw int) {
	if sh == dh && sw == dw {
		copy(dst, src[:c*sh*sw])
		return
	}
	fy := float64(sh) / float64(dh)
	fx := float64(sw) / float64(dw)
	for ch := 0; ch < c; ch++ {
		s := src[ch*sh*sw : (ch+1)*sh*sw]
		d := dst[ch*dh*dw : (ch+1)*dh*dw]
		for y := 0; y < dh; y++ {
			sy := (float64(y)+0.5)*fy - 0.5
			y0, wy := splitCoord(sy, sh)
			y1 := min(y0+1, sh-1)
			for x := 0; x < dw; x++ {
				sx := (float64(x)+0.5)*fx - 0.5
				x0, wx := splitCoord(sx, sw)
				x1 := min(x0+1, sw-1)
				top := float64(s[y0*sw+x0])*(1-wx) + float64(s[y0*sw+x1])*wx
				bot := float64(s[y1*sw+x0])*(1-wx) + float64(s[y1*sw+x1])*wx
				v := top*(1-wy) + bot*wy
				d[y*dw+x] = uint8(min(255, max(0, v+0.5)))
			}
		}
	}
}

// splitCoord clamps a source coordinate into [0, n-1] and returns its
// integer part and fraction.
func splitCoord(v float64, n int) (int, float64) {
	if v <= 0 {
		return 0, 0
	}
	if v >= float64(n-1) {
		return n - 1, 0
	}
	i := int(v)
	return i, v - float64(i)
}
