package imgcodec

import "image"

// writeYCbCr writes a decoded JPEG's YCbCr planes as OpenCV's libjpeg hands
// them over: grayscale is the Y plane itself (libjpeg outputs JCS_GRAYSCALE
// from a colour JPEG by dropping chroma); colour upsamples the chroma with
// libjpeg's "fancy" triangle filter (jdsample.c, the default OpenCV keeps)
// and converts with libjpeg's fixed-point tables (jdcolor.c), then writes
// B, G, R planes. Go's own RGBA conversion replicates chroma samples instead,
// which differs from OpenCV by up to ~60 levels at colour edges.
func writeYCbCr(dst []byte, src *image.YCbCr, channels int) bool {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	plane := w * h
	if channels == 1 {
		for y := 0; y < h; y++ {
			o := src.YOffset(b.Min.X, b.Min.Y+y)
			copy(dst[y*w:(y+1)*w], src.Y[o:o+w])
		}
		return true
	}
	var hs, vs int // horizontal and vertical chroma subsampling
	switch src.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio422:
		hs, vs = 2, 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	default:
		return false // 4:4:0, 4:1:1, 4:1:0: Go's conversion
	}
	if b.Min.X != 0 || b.Min.Y != 0 {
		return false
	}
	cw := (w + hs - 1) / hs
	ch := (h + vs - 1) / vs
	cb := upsample(src.Cb, src.CStride, cw, ch, w, h, hs, vs)
	cr := upsample(src.Cr, src.CStride, cw, ch, w, h, hs, vs)
	for y := 0; y < h; y++ {
		yo := y * src.YStride
		for x := 0; x < w; x++ {
			i := y*w + x
			yy := int(src.Y[yo+x])
			cbv, crv := int(cb[i])-128, int(cr[i])-128
			r := yy + ((91881*crv + 32768) >> 16)
			g := yy + ((-22554*cbv - 46802*crv + 32768) >> 16)
			bb := yy + ((116130*cbv + 32768) >> 16)
			dst[i] = clamp8(bb)
			dst[plane+i] = clamp8(g)
			dst[2*plane+i] = clamp8(r)
		}
	}
	return true
}

func clamp8(v int) byte {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return byte(v)
}

// upsample expands a cw×ch chroma plane to w×h with libjpeg's fancy
// upsampling: h2v1 (4:2:2) weights neighbours 3:1 across; h2v2 (4:2:0)
// weights 3:1 in both directions, with libjpeg's alternating rounding.
func upsample(c []byte, stride, cw, ch, w, h, hs, vs int) []byte {
	out := make([]byte, w*h)
	at := func(x, y int) int { return int(c[y*stride+x]) }
	if hs == 1 && vs == 1 {
		for y := 0; y < h; y++ {
			copy(out[y*w:(y+1)*w], c[y*stride:y*stride+w])
		}
		return out
	}
	row := make([]int, cw) // column sums (h2v2) or samples (h2v1), ×4 scale for h2v1
	for oy := 0; oy < h; oy++ {
		cy := oy / vs
		if vs == 2 {
			// The nearer chroma row counts 3, the other 1 (edges repeat).
			ny := cy - 1
			if oy%2 == 1 {
				ny = cy + 1
			}
			ny = max(0, min(ch-1, ny))
			for x := 0; x < cw; x++ {
				row[x] = 3*at(x, cy) + at(x, ny)
			}
		} else {
			for x := 0; x < cw; x++ {
				row[x] = at(x, cy)
			}
		}
		o := out[oy*w : (oy+1)*w]
		put := func(x, v int) {
			if x < w {
				o[x] = byte(v)
			}
		}
		if cw == 1 {
			if vs == 2 {
				put(0, (row[0]*4+8)>>4)
				put(1, (row[0]*4+7)>>4)
			} else {
				put(0, row[0])
				put(1, row[0])
			}
			continue
		}
		for x := 0; x < cw; x++ {
			prev, next := row[max(0, x-1)], row[min(cw-1, x+1)]
			if vs == 2 {
				// jdsample.c h2v2_fancy_upsample
				if x == 0 {
					put(0, (row[0]*4+8)>>4)
				} else {
					put(2*x, (row[x]*3+prev+8)>>4)
				}
				if x == cw-1 {
					put(2*x+1, (row[x]*4+7)>>4)
				} else {
					put(2*x+1, (row[x]*3+next+7)>>4)
				}
			} else {
				// jdsample.c h2v1_fancy_upsample
				if x == 0 {
					put(0, row[0])
				} else {
					put(2*x, (row[x]*3+prev+1)>>2)
				}
				if x == cw-1 {
					put(2*x+1, row[x])
				} else {
					put(2*x+1, (row[x]*3+next+2)>>2)
				}
			}
		}
	}
	return out
}
