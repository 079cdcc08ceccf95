package cpu

import "sync"

// Blocking of the SGEMM (GotoBLAS/BLIS loop order). The micro-kernel
// computes an mr×nr tile of C from mr rows of A, read in place through
// strides when op(B) is narrow (packing A does not pay for the layers'
// small products) or from mr-row slivers of packed A otherwise, and an
// nr-column sliver of packed B; kc bounds the shared dimension of one pass,
// mc rows of A (mc×kc) stay in L2, and nc bounds the width of one packed B
// panel.
const (
	mr = 4
	nr = 64
	kc = 256
	mc = 128
	nc = 2048
)

// packAMinCols is the width of op(B) from which A is packed.
const packAMinCols = 4 * nr

// parallelFlops is the work (2·m·n·k) above which Sgemm splits over cores.
const parallelFlops = 1 << 22

// packBuf is the scratch memory of one serial SGEMM call.
type packBuf struct {
	a []float32 // mc×kc, in mr-row slivers
	b []float32 // kc×nc, in nr-column slivers
}

// packPool recycles packing buffers between calls; it holds no state that
// outlives a call.
var packPool = sync.Pool{New: func() any {
	return &packBuf{a: make([]float32, mc*kc), b: make([]float32, kc*nc)}
}}

// GemmTileUse is the share of the micro-kernel's work that lands in an
// m×n C (m rows of op(A), n columns of op(B)) rather than in the padding
// of its tiles: rows go in steps of mr, columns in slivers of nr, and a
// last sliver of at most 32 columns runs the 32-wide kernel. Callers use it
// to choose another way when a product would be mostly padding.
func GemmTileUse(m, n int) float64 {
	if m <= 0 || n <= 0 {
		return 0
	}
	cols := n / nr * nr
	if rem := n % nr; rem > 32 {
		cols += nr
	} else if rem > 0 {
		cols += 32
	}
	rows := (m + mr - 1) / mr * mr
	return float64(m*n) / float64(rows*cols)
}

// Gemm computes C = alpha*op(A)*op(B) + beta*C (row-major, see GemmRef).
// float32 runs the fast parallel Sgemm; other types run GemmRef.
func Gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if a32, ok := any(a).([]float32); ok {
		Sgemm(transA, transB, m, n, k, float32(alpha), a32, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
		return
	}
	GemmRef(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmSerial is Gemm on the calling goroutine only, for callers that
// parallelize at a coarser level (over a batch, for example).
func GemmSerial[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if a32, ok := any(a).([]float32); ok {
		SgemmSerial(transA, transB, m, n, k, float32(alpha), a32, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
		return
	}
	GemmRef(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Sgemm computes C = alpha*op(A)*op(B) + beta*C in float32, row-major, with
// the arguments of GemmRef. Large products are split over
// runtime.GOMAXPROCS(0) goroutines along M or N. Like indexing, it panics
// if a slice is too short for the given shape and strides.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	w := Workers(1 << 30)
	if w <= 1 || 2*m*n*k < parallelFlops {
		SgemmSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// Split the longer of M and N into whole micro-tiles.
	if n >= m && n >= 2*nr {
		tiles := (n + nr - 1) / nr
		if w > tiles {
			w = tiles
		}
		ParallelN(w, tiles, func(_, lo, hi int) {
			j0, j1 := lo*nr, min(hi*nr, n)
			bs := b[j0:]
			if transB {
				bs = b[j0*ldb:]
			}
			SgemmSerial(transA, transB, m, j1-j0, k, alpha, a, lda, bs, ldb, beta, c[j0:], ldc)
		})
		return
	}
	tiles := (m + mr - 1) / mr
	if w > tiles {
		w = tiles
	}
	ParallelN(w, tiles, func(_, lo, hi int) {
		i0, i1 := lo*mr, min(hi*mr, m)
		var as []float32
		if transA {
			as = a[i0:]
		} else {
			as = a[i0*lda:]
		}
		SgemmSerial(transA, transB, i1-i0, n, k, alpha, as, lda, b, ldb, beta, c[i0*ldc:], ldc)
	})
}

// SgemmSerial is Sgemm on the calling goroutine only.
func SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	// beta == 0: the first pass over K writes C instead of adding to it.
	overwrite := beta == 0 && alpha != 0 && k > 0
	if !overwrite {
		scaleRows(beta, m, n, c, ldc)
	}
	if alpha == 0 || k <= 0 {
		return
	}
	if transB && swapPays(transA, m, n, k) {
		// Cᵀ = op(B)ᵀ·op(A)ᵀ: B is read in place and only A is packed,
		// which is cheaper when op(B) is large and would need a
		// transposing pack (an inner product's weights, for example).
		gemmCore(n, m, k, alpha, b, ldb, 1, !transA, a, lda, c, ldc, true, overwrite)
		return
	}
	rs, cs := lda, 1 // strides of op(A)'s rows and columns in a
	if transA {
		rs, cs = 1, lda
	}
	gemmCore(m, n, k, alpha, a, rs, cs, transB, b, ldb, c, ldc, false, overwrite)
}

// swapPays reports whether computing Cᵀ = op(B)ᵀ·op(A)ᵀ beats packing a
// transposed B: the transposing pack of n·k values against packing m·k
// values of A and scattering the m·n results.
func swapPays(transA bool, m, n, k int) bool {
	cost := m*n + m*k
	if !transA {
		cost += m * k // A's pack transposes too
	}
	return n*k > 2*cost
}

// gemmCore adds alpha·A·op(B) into C, or into Cᵀ when transC, where A
// (m×k) has element (i,p) at a[i*rs+p*cs] and op(B) is k×n; with
// overwrite it sets C to that instead.
func gemmCore(m, n, k int, alpha float32, a []float32, rs, cs int, transB bool, b []float32, ldb int, c []float32, ldc int, transC, overwrite bool) {
	buf := packPool.Get().(*packBuf)
	defer packPool.Put(buf)
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			// Full-width slivers of a row-major op(B) are read in place
			// (row stride ldb); anything else is packed.
			pb, bld, bsl := buf.b, nr, kb*nr
			if transB || nb%nr != 0 {
				packB(transB, b, ldb, pc, jc, kb, nb, buf.b)
			} else {
				pb, bld, bsl = b[pc*ldb+jc:], ldb, nr
			}
			for ic := 0; ic < m; ic += mc {
				mb := min(mc, m-ic)
				as := a[ic*rs+pc*cs:]
				var cb []float32
				if transC {
					cb = c[jc*ldc+ic:]
				} else {
					cb = c[ic*ldc+jc:]
				}
				if nb >= packAMinCols {
					packA(as, rs, cs, mb, kb, buf.a)
					macroKernel(mb, nb, kb, alpha, buf.a, -1, mr, pb, bld, bsl, cb, ldc, transC, overwrite && pc == 0)
					continue
				}
				macroKernel(mb, nb, kb, alpha, as, rs, cs, pb, bld, bsl, cb, ldc, transC, overwrite && pc == 0)
			}
		}
	}
}

// scaleRows sets C = beta*C over an m×n block; beta == 0 overwrites.
func scaleRows(beta float32, m, n int, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
		} else {
			Sscal(beta, row)
		}
	}
}

// packA copies A (mb×kb, element (i,p) at a[i*rs+p*cs]) into mr-row
// slivers: dst[s*kb*mr + p*mr + r] = A[s*mr+r, p], zero-padded rows.
func packA(a []float32, rs, cs, mb, kb int, dst []float32) {
	for s := 0; s*mr < mb; s++ {
		rows := min(mr, mb-s*mr)
		d := dst[s*kb*mr : (s+1)*kb*mr]
		if rows < mr {
			clear(d)
		}
		for r := 0; r < rows; r++ {
			o := (s*mr + r) * rs
			if cs == 1 {
				for p, v := range a[o : o+kb] {
					d[p*mr+r] = v
				}
				continue
			}
			for p := 0; p < kb; p++ {
				d[p*mr+r] = a[o+p*cs]
			}
		}
	}
}

// packB copies op(B)[pc:pc+kb, jc:jc+nb] into nr-column slivers:
// dst[s*kb*nr + p*nr + j] = op(B)[pc+p, jc+s*nr+j], zero-padded columns.
func packB(transB bool, b []float32, ldb, pc, jc, kb, nb int, dst []float32) {
	for s := 0; s*nr < nb; s++ {
		cols := min(nr, nb-s*nr)
		d := dst[s*kb*nr : (s+1)*kb*nr]
		j0 := jc + s*nr
		if !transB {
			for p := 0; p < kb; p++ {
				dp := d[p*nr : p*nr+nr]
				copy(dp, b[(pc+p)*ldb+j0:(pc+p)*ldb+j0+cols])
				clear(dp[cols:])
			}
			continue
		}
		// Transposing pack: 16×16 blocks through transpose16 on AVX-512
		// and AVX2, then four source rows at a time.
		j := 0
		if KernelLevel() >= LevelAVX2 {
			for ; j+16 <= cols; j += 16 {
				o := (j0+j)*ldb + pc
				p := 0
				for ; p+16 <= kb; p += 16 {
					transpose16(b[o+p:], ldb, d[p*nr+j:], nr)
				}
				for ; p < kb; p++ {
					dp := d[p*nr+j : p*nr+j+16]
					for q := range dp {
						dp[q] = b[o+q*ldb+p]
					}
				}
			}
		}
		for ; j+4 <= cols; j += 4 {
			o := (j0+j)*ldb + pc
			s0 := b[o : o+kb]
			s1 := b[o+ldb : o+ldb+kb]
			s2 := b[o+2*ldb : o+2*ldb+kb]
			s3 := b[o+3*ldb : o+3*ldb+kb]
			for p, v := range s0 {
				dp := d[p*nr+j : p*nr+j+4]
				dp[0], dp[1], dp[2], dp[3] = v, s1[p], s2[p], s3[p]
			}
		}
		for ; j < cols; j++ {
			src := b[(j0+j)*ldb+pc : (j0+j)*ldb+pc+kb]
			for p, v := range src {
				d[p*nr+j] = v
			}
		}
		if cols < nr {
			for p := 0; p < kb; p++ {
				clear(d[p*nr+cols : p*nr+nr])
			}
		}
	}
}

// macroKernel adds alpha * A (mb×kb, element (i,p) at a[i*rs+p*cs], or
// packed by packA when rs < 0) times B (kb×nb) into C, or into Cᵀ
// (element (i,j) at c[j*ldc+i]) when transC. B's nr-column sliver s starts
// at pb[s*bsl] with rows bld apart: packed by packB (bld = nr,
// bsl = kb*nr) or read in place (bld = ldb, bsl = nr).
func macroKernel(mb, nb, kb int, alpha float32, a []float32, rs, cs int, pb []float32, bld, bsl int, c []float32, ldc int, transC, overwrite bool) {
	var edge, acc [mr * nr]float32
	// The tiles' row offsets, written element by element and passed by
	// pointer: an array returned or passed by value is copied with 16-byte
	// moves, whose loads of the two 8-byte stores just made cannot be
	// forwarded and wait until the stores before them, the previous tile's
	// stores of C, have left the core (a tenth of ip1's product).
	var offs, offs4 [mr]int
	for jr := 0; jr < nb; jr += nr {
		cols := min(nr, nb-jr)
		o := (jr / nr) * bsl
		bs := pb[o : o+(kb-1)*bld+nr]
		for ir := 0; ir < mb; ir += mr {
			rows := min(mr, mb-ir)
			// Row offsets of this tile in a; missing rows repeat row 0
			// and their results are dropped.
			tileOffsets(&offs, ir, rows, kb, rs)
			// Whole 32-wide tiles go eight rows at a time where there are.
			if !transC && cols == 32 && ir+2*mr <= mb {
				tileOffsets(&offs4, ir+mr, mr, kb, rs)
				if microKernel8x32(kb, alpha, a, &offs, &offs4, cs, bs, bld, c[ir*ldc+jr:], ldc, overwrite) {
					ir += mr
					continue
				}
			}
			if !transC {
				microKernel(kb, alpha, a, &offs, cs, bs, bld, c[ir*ldc+jr:], ldc, rows, cols, overwrite, &acc)
				continue
			}
			microKernel(kb, alpha, a, &offs, cs, bs, bld, edge[:], nr, mr, nr, true, &acc)
			zeroUpper() // the scalar copy below is SSE code
			for j := 0; j < cols; j++ {
				ccol := c[(jr+j)*ldc+ir : (jr+j)*ldc+ir+rows]
				for r := range ccol {
					if overwrite {
						ccol[r] = edge[r*nr+j]
					} else {
						ccol[r] += edge[r*nr+j]
					}
				}
			}
		}
	}
}

// tileOffsets sets offs to the offsets in a of the rows of the tile at row
// ir (rows of them real; the others repeat the first), for A read in place
// with row stride rs, or packed by packA when rs < 0.
func tileOffsets(offs *[mr]int, ir, rows, kb, rs int) {
	for r := range offs {
		rr := r
		if r >= rows {
			rr = 0
		}
		if rs < 0 {
			offs[r] = ir*kb + rr
		} else {
			offs[r] = (ir + rr) * rs
		}
	}
}

// microKernelGo adds alpha times the mr×nr product of mr rows of A (row r
// starts at a[offs[r]], column stride cs) and a B sliver (kb rows of nr
// values, ldb apart) into the first rows×cols corner of C, or with
// overwrite sets that corner to it; portable reference for the SIMD
// micro-kernel.
func microKernelGo(kb int, alpha float32, a []float32, offs *[mr]int, cs int, b []float32, ldb int, c []float32, ldc, rows, cols int, overwrite bool) {
	var acc [mr * nr]float32
	for p := 0; p < kb; p++ {
		bp := b[p*ldb : p*ldb+nr]
		for r, o := range offs {
			av := a[o+p*cs]
			row := acc[r*nr : r*nr+nr]
			for j, bv := range bp {
				row[j] += av * bv
			}
		}
	}
	for r := 0; r < rows; r++ {
		crow := c[r*ldc : r*ldc+cols]
		for j := range crow {
			if overwrite {
				crow[j] = alpha * acc[r*nr+j]
			} else {
				crow[j] += alpha * acc[r*nr+j]
			}
		}
	}
}
