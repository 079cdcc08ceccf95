package cpu

import "github.com/gocaffe/gocaffe/kernels"

// Im2col lays out the kh·kw shifted windows of each channel of an
// image (c×h×w) as rows of col ((c·kh·kw)×(oh·ow)), zero outside the image.
func Im2col[T Float](im []T, c, h, w int, g kernels.ConvGeom, oh, ow int, col []T) {
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
