package cpu

import (
	"sync"

	"github.com/gocaffe/gocaffe/kernels"
)

// Im2col lays out the kh·kw shifted windows of each channel of an
// image (c×h×w) as rows of col ((c·kh·kw)×(oh·ow)), zero outside the image.
func Im2col[T Float](im []T, c, h, w int, g kernels.ConvGeom, oh, ow int, col []T) {
	if im32, ok := any(im).([]float32); ok && unitWindows(h, w, g, oh, ow) {
		im2colUnit(im32, c, h, w, g, oh, ow, any(col).([]float32))
		return
	}
	sp := oh * ow
	r := 0
	for ch := 0; ch < c; ch++ {
		img := im[ch*h*w : (ch+1)*h*w]
		for ki := 0; ki < g.KH; ki++ {
			y0 := ki*g.DH - g.PH
			ylo, yhi := valid(y0, g.SH, h, oh)
			for kj := 0; kj < g.KW; kj++ {
				row := col[r*sp : (r+1)*sp]
				r++
				x0 := kj*g.DW - g.PW
				lo, hi := valid(x0, g.SW, w, ow)
				clear(row[:ylo*ow])
				clear(row[yhi*ow:])
				if lo > 0 || hi < ow {
					for y := ylo; y < yhi; y++ {
						zeroShort(row[y*ow : y*ow+lo])
						zeroShort(row[y*ow+hi : (y+1)*ow])
					}
				}
				if yhi <= ylo || hi <= lo {
					continue
				}
				base := (y0+ylo*g.SH)*w + x0 // may be negative: read from lo on
				if g.SW == 1 {
					CopyRows(row[ylo*ow+lo:], ow, img[base+lo:], g.SH*w, yhi-ylo, hi-lo)
					continue
				}
				for y := ylo; y < yhi; y++ {
					dst, o := row[y*ow:(y+1)*ow], base+(y-ylo)*g.SH*w
					for x := lo; x < hi; x++ {
						dst[x] = img[o+x*g.SW]
					}
				}
			}
		}
	}
}

// zeroShort zeroes s; the few values a padded row edge holds are cheaper to
// zero in a loop than through clear's call.
func zeroShort[T Float](s []T) {
	if len(s) > 16 {
		clear(s)
		return
	}
	for i := range s {
		s[i] = 0
	}
}

// valid returns the range [lo, hi) of output columns x for which
// x0 + x·stride lies inside [0, w).
func valid(x0, stride, w, ow int) (int, int) {
	lo := 0
	if x0 < 0 {
		lo = (-x0 + stride - 1) / stride
	}
	hi := 0
	if w-x0 > 0 {
		hi = (w - x0 + stride - 1) / stride
	}
	hi = min(hi, ow)
	lo = min(lo, hi)
	return lo, hi
}

// Col2im is the adjoint of Im2col: it overwrites im with the sum of
// the column entries that read each pixel.
func Col2im[T Float](col []T, c, h, w int, g kernels.ConvGeom, oh, ow int, im []T) {
	if im32, ok := any(im).([]float32); ok && unitWindows(h, w, g, oh, ow) {
		col2imUnit(any(col).([]float32), c, h, w, g, oh, ow, im32)
		return
	}
	clear(im[:c*h*w])
	sp := oh * ow
	r := 0
	for ch := 0; ch < c; ch++ {
		img := im[ch*h*w : (ch+1)*h*w]
		for ki := 0; ki < g.KH; ki++ {
			y0 := ki*g.DH - g.PH
			ylo, yhi := valid(y0, g.SH, h, oh)
			for kj := 0; kj < g.KW; kj++ {
				row := col[r*sp : (r+1)*sp]
				r++
				x0 := kj*g.DW - g.PW
				lo, hi := valid(x0, g.SW, w, ow)
				if yhi <= ylo || hi <= lo {
					continue
				}
				base := (y0+ylo*g.SH)*w + x0 // may be negative: write from lo on
				if g.SW == 1 {
					AddRows(img[base+lo:], g.SH*w, row[ylo*ow+lo:], ow, yhi-ylo, hi-lo)
					continue
				}
				for y := ylo; y < yhi; y++ {
					sr, o := row[y*ow:(y+1)*ow], base+(y-ylo)*g.SH*w
					for x := lo; x < hi; x++ {
						img[o+x*g.SW] += sr[x]
					}
				}
			}
		}
	}
}

// unitWindows reports whether the windows move by one pixel (stride 1, no
// dilation) and fit the padded image: then row (ch, ki, kj) of the columns
// is, output row by output row, a plain copy of a row of the padded image,
// with no edges to test or zero (im2colUnit).
func unitWindows(h, w int, g kernels.ConvGeom, oh, ow int) bool {
	return g.SH == 1 && g.SW == 1 && g.DH == 1 && g.DW == 1 &&
		oh+g.KH-1 <= h+2*g.PH && ow+g.KW-1 <= w+2*g.PW && oh > 0 && ow > 0
}

// padPool recycles the padded copies of images that im2colUnit and
// col2imUnit work on; it holds no state that outlives a call.
var padPool = sync.Pool{New: func() any { return new([]float32) }}

// padded returns a zeroed scratch of n values from padPool.
func padded(n int) *[]float32 {
	p := padPool.Get().(*[]float32)
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	clear(*p)
	return p
}

// im2colUnit is Im2col for unit windows: the image is copied once into a
// zero border of the padding (unless there is none), then every column row
// is a block copy of oh rows of ow values.
func im2colUnit(im []float32, c, h, w int, g kernels.ConvGeom, oh, ow int, col []float32) {
	hp, wp := h+2*g.PH, w+2*g.PW
	src := im[:c*h*w]
	if g.PH > 0 || g.PW > 0 {
		p := padded(c * hp * wp)
		defer padPool.Put(p)
		for ch := 0; ch < c; ch++ {
			CopyRows((*p)[ch*hp*wp+g.PH*wp+g.PW:], wp, im[ch*h*w:], w, h, w)
		}
		src = *p
	}
	sp := oh * ow
	r := 0
	for ch := 0; ch < c; ch++ {
		plane := src[ch*hp*wp : (ch+1)*hp*wp]
		for ki := 0; ki < g.KH; ki++ {
			for kj := 0; kj < g.KW; kj++ {
				SCopyRows(col[r*sp:(r+1)*sp], ow, plane[ki*wp+kj:], wp, oh, ow)
				r++
			}
		}
	}
}

// col2imUnit is Col2im for unit windows: the column rows are added into a
// padded image, whose inside is then copied out.
func col2imUnit(col []float32, c, h, w int, g kernels.ConvGeom, oh, ow int, im []float32) {
	if col2imNarrow(col, c, h, w, g, oh, ow, im) {
		return
	}
	hp, wp := h+2*g.PH, w+2*g.PW
	pad := g.PH > 0 || g.PW > 0
	dst := im[:c*h*w]
	var p *[]float32
	if pad {
		p = padded(c * hp * wp)
		defer padPool.Put(p)
		dst = *p
	} else {
		clear(dst)
	}
	sp := oh * ow
	r := 0
	for ch := 0; ch < c; ch++ {
		plane := dst[ch*hp*wp : (ch+1)*hp*wp]
		for ki := 0; ki < g.KH; ki++ {
			for kj := 0; kj < g.KW; kj++ {
				SAddRows(plane[ki*wp+kj:], wp, col[r*sp:(r+1)*sp], ow, oh, ow)
				r++
			}
		}
	}
	if pad {
		for ch := 0; ch < c; ch++ {
			CopyRows(im[ch*h*w:], w, (*p)[ch*hp*wp+g.PH*wp+g.PW:], wp, h, w)
		}
	}
}
