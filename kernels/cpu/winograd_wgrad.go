package cpu

// The weight gradient of a 3×3 stride-1 convolution by Winograd's
// algorithm, from the forward F(m,3) by transposition: where the forward
// is y = Aᵀ[(G g) ⊙ (Bᵀ d)], the gradient of a tile's filter taps by its
// top diff e (m×m) is z = Gᵀ[(A e) ⊙ (Bᵀ d)], in 2-D
//
//	dW = Gᵀ [ (A e Aᵀ) ⊙ (Bᵀ d B) ] G,
//
// summed over every tile of every image in the transformed domain: per
// element ξ one GEMM [oc × tiles]·[tiles × c] (the tiles are the long
// reduction), and the output transform once per filter at the end. The
// input transform is the forward's; the multiplies are (m+2)²/(9m²) of
// the direct weight gradient's (4/9 for F(2,3), 1/4 for F(4,3)).

// WinogradWeightGradLen is the length of WinogradWeightGrad's sums for
// oc×c filters: (m+2)² matrices of oc×c.
func WinogradWeightGradLen(m, oc, c int) int { return WinogradPackLen(m, oc, c) }

// WinogradWeightGrad adds to acc (WinogradWeightGradLen values,
// element ξ of filter (k, ch) at acc[ξ·oc·c + k·c + ch]) the transformed
// weight gradient of one image: its input im (c×h×w, padding ph, pw) and
// its top diff dy (oc×oh×ow, oh = h+2ph-2, ow = w+2pw-2).
// WinogradWeightFinish turns the sums into the gradient.
func WinogradWeightGrad[T Float](m int, im []T, c, h, w, ph, pw int, dy []T, oc, oh, ow int, acc []T) {
	checkWinogradTile(m)
	if oh <= 0 || ow <= 0 || oc <= 0 || c <= 0 {
		return
	}
	th, tw := (oh+m-1)/m, (ow+m-1)/m
	a := winogradAlpha(m)
	aa := a * a
	_ = acc[aa*oc*c-1]
	_ = dy[oc*oh*ow-1]
	buf := getWinogradBuf[T]()
	defer winogradPool[T]().Put(buf)

	xp, hp, wp := buf.padImage(m, im, c, h, w, ph, pw, th, tw)
	// The top diff, zero-padded to whole tiles and rows of a multiple of
	// eight tiles, so that the transform reads no value past a plane.
	dh, dw := m*th, m*((tw+7)&^7)
	buf.dy = grow(buf.dy, oc*dh*dw)
	clear(buf.dy)
	for k := 0; k < oc; k++ {
		for y := 0; y < oh; y++ {
			copy(buf.dy[(k*dh+y)*dw:], dy[(k*oh+y)*ow:(k*oh+y+1)*ow])
		}
	}
	rowsPer := winogradRowsPer[T](aa, c+oc, tw)
	for ty0 := 0; ty0 < th; ty0 += rowsPer {
		ty1 := min(th, ty0+rowsPer)
		n := (ty1 - ty0) * tw
		v, ldv := buf.inputChunk(m, xp, c, hp, wp, ty0, ty1, tw)
		lde := oc*n + winogradSlack // slack as in V: see inputChunk
		buf.m = grow(buf.m, aa*lde)
		e := buf.m
		for k := 0; k < oc; k++ {
			winogradTopDiff(m, buf.dy[k*dh*dw:(k+1)*dh*dw], dw, ty0, ty1, tw, e[k*n:], lde)
		}
		for xi := 0; xi < aa; xi++ {
			GemmSerial(false, true, oc, c, n, 1, e[xi*lde:xi*lde+oc*n], n, v[xi*ldv:xi*ldv+c*n], n, 1, acc[xi*oc*c:(xi+1)*oc*c], c)
		}
	}
}

// winogradTopDiff writes E = A e Aᵀ of one top-diff plane's tiles of tile
// rows [ty0, ty1) to e: element ξ of the chunk's tile t at e[ξ·ld + t].
// The plane dyp is padded with zeros to whole tiles, rows ldy apart and
// of a multiple of eight tiles.
func winogradTopDiff[T Float](m int, dyp []T, ldy, ty0, ty1, tw int, e []T, ld int) {
	if d32, ok := any(dyp).([]float32); ok && m == 4 && winograd4TopDiffF32(d32, ldy, ty0, ty1, tw, any(e).([]float32), ld) {
		return
	}
	a := winogradAlpha(m)
	var cols [6][4]T // A applied down each column: element r of column j at cols[r][j]
	var col, row [6]T
	t := 0
	for ty := ty0; ty < ty1; ty++ {
		for tx := 0; tx < tw; tx, t = tx+1, t+1 {
			at := dyp[m*ty*ldy+m*tx:]
			for j := 0; j < m; j++ {
				var e2, e3 T
				if m == 4 {
					e2, e3 = at[2*ldy+j], at[3*ldy+j]
				}
				winogradA(m, at[j], at[ldy+j], e2, e3, &col)
				for r := 0; r < a; r++ {
					cols[r][j] = col[r]
				}
			}
			for r := 0; r < a; r++ {
				winogradA(m, cols[r][0], cols[r][1], cols[r][2], cols[r][3], &row)
				for q := 0; q < a; q++ {
					e[(r*a+q)*ld+t] = row[q]
				}
			}
		}
	}
}

// winogradA is A·(e0, …, e_{m-1}) (A = (Aᵀ)ᵀ, m+2 values; e2, e3 unused
// for m = 2).
func winogradA[T Float](m int, e0, e1, e2, e3 T, out *[6]T) {
	if m == 2 {
		out[0], out[1], out[2], out[3] = e0, e0+e1, e0-e1, -e1
		return
	}
	p02, p13 := e0+e2, e1+e3
	q02, q13 := e0+4*e2, 2*e1+8*e3
	out[0], out[1], out[2], out[3], out[4], out[5] = e0, p02+p13, p02-p13, q02+q13, q02-q13, e3
}

// WinogradWeightFinish adds the weight gradient Gᵀ U G of the sums acc
// that WinogradWeightGrad accumulated for oc×c filters to dw (oc×c×3×3),
// over all cores for more than winogradPackSerial/4 filters.
func WinogradWeightFinish[T Float](m int, acc []T, oc, c int, dw []T) {
	checkWinogradTile(m)
	a := winogradAlpha(m)
	n := oc * c
	_ = acc[a*a*n-1]
	_ = dw[9*n-1]
	if n <= winogradPackSerial/4 {
		zeroUpper() // the transforms are SSE code
		winogradFinishRange(m, acc, n, 0, n, dw)
		return
	}
	Parallel(n, func(_, lo, hi int) {
		zeroUpper()
		winogradFinishRange(m, acc, n, lo, hi, dw)
	})
}

// winogradFinishRange is WinogradWeightFinish of filters [lo, hi) of n,
// in blocks of winogradPackBlock filters read a cache line a row at a
// time (see winograd4PackRange).
func winogradFinishRange[T Float](m int, acc []T, n, lo, hi int, dw []T) {
	a := winogradAlpha(m)
	var blk [36][winogradPackBlock]T
	var u [6][6]T
	var t [3][6]T
	var out [9][winogradPackBlock]float32
	for f0 := lo; f0 < hi; f0 += winogradPackBlock {
		nb := min(winogradPackBlock, hi-f0)
		for xi := 0; xi < a*a; xi++ {
			copy(blk[xi][:nb], acc[xi*n+f0:xi*n+f0+nb])
		}
		if b32, ok := any(&blk).(*[36][winogradPackBlock]float32); ok && m == 4 && winograd4FinishF32(b32, &out) {
			d := any(dw).([]float32)[9*f0 : 9*(f0+nb)]
			for b := 0; b < nb; b++ {
				for k := 0; k < 9; k++ {
					d[9*b+k] += out[k][b]
				}
			}
			continue
		}
		for b := 0; b < nb; b++ {
			for xi := 0; xi < a*a; xi++ {
				u[xi/a][xi%a] = blk[xi][b]
			}
			// Gᵀ U: down each column; then (Gᵀ U) G along each row.
			for j := 0; j < a; j++ {
				t[0][j], t[1][j], t[2][j] = winogradGT(m, u[0][j], u[1][j], u[2][j], u[3][j], u[4][j], u[5][j])
			}
			d := dw[9*(f0+b) : 9*(f0+b)+9 : 9*(f0+b)+9]
			for i := 0; i < 3; i++ {
				z0, z1, z2 := winogradGT(m, t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5])
				d[3*i] += z0
				d[3*i+1] += z1
				d[3*i+2] += z2
			}
		}
	}
}

// winogradGT is Gᵀ·(u0, …, u_{m+1}) (three values; u4, u5 unused for
// m = 2).
func winogradGT[T Float](m int, u0, u1, u2, u3, u4, u5 T) (z0, z1, z2 T) {
	if m == 2 {
		h := (u1 + u2) / 2
		return u0 + h, (u1 - u2) / 2, h + u3
	}
	const sixth, twelfth, twentyFourth = 1.0 / 6, 1.0 / 12, 1.0 / 24
	p12, d12 := u1+u2, u2-u1
	p34, d34 := u3+u4, u3-u4
	return u0/4 - p12*sixth + p34*twentyFourth, d12*sixth + d34*twelfth, (p34-p12)*sixth + u5
}
