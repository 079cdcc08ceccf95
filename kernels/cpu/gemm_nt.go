package cpu

// GemmNTSum adds the sum over a batch of products A_b·B_bᵀ into C:
//
//	C[i][j] += Σ_b Σ_p A_b[i][p]·B_b[j][p]
//
// A_b is m×k with row i at a[b*strideA+i*lda:], B_b is n×k with row j at
// b[b*strideB+j*ldb:], and C is m×n with row stride ldc. Both operands are
// read along their rows, so neither is packed or transposed: this is a
// convolution's weight gradient (top diff times the columns, transposed),
// summed over the images without a pass over C per image. float32 runs the
// SIMD kernel on all cores (split along n); other types run GemmNTSumRef.
func GemmNTSum[T Float](batch, m, n, k int, a []T, lda, strideA int, b []T, ldb, strideB int, c []T, ldc int) {
	if batch <= 0 || m <= 0 || n <= 0 || k <= 0 {
		return
	}
	a32, ok := any(a).([]float32)
	if !ok {
		GemmNTSumRef(batch, m, n, k, a, lda, strideA, b, ldb, strideB, c, ldc)
		return
	}
	b32, c32 := any(b).([]float32), any(c).([]float32)
	tiles := (n + ntCols - 1) / ntCols
	w := Workers(tiles)
	if 2*batch*m*n*k < parallelFlops {
		w = 1
	}
	ParallelN(w, tiles, func(_, lo, hi int) {
		j0, j1 := lo*ntCols, min(hi*ntCols, n)
		ntBlock(batch, m, j1-j0, k, a32, lda, strideA, b32[j0*ldb:], ldb, strideB, c32[j0:], ldc)
	})
}

// ntRows×ntCols is the tile of C one kernel call computes.
const (
	ntRows = 4
	ntCols = 2
)

// ntBatchFloats bounds the A values of the batch items one pass over the
// tiles of C reads (256 KiB of float32), so that they come from L2 while
// every column tile reads them again.
const ntBatchFloats = 1 << 16

// ntBlock is GemmNTSum over all of C on the calling goroutine, in passes
// over groups of batch items.
func ntBlock(batch, m, n, k int, a []float32, lda, strideA int, b []float32, ldb, strideB int, c []float32, ldc int) {
	group := max(1, ntBatchFloats/(m*k))
	for b0 := 0; b0 < batch; b0 += group {
		ntPass(min(group, batch-b0), m, n, k, a[b0*strideA:], lda, strideA, b[b0*strideB:], ldb, strideB, c, ldc)
	}
}

// ntPass adds one group's products into C.
func ntPass(batch, m, n, k int, a []float32, lda, strideA int, b []float32, ldb, strideB int, c []float32, ldc int) {
	for j := 0; j < n; j += ntCols {
		cols := min(ntCols, n-j)
		for i := 0; i < m; i += ntRows {
			rows := min(ntRows, m-i)
			// Missing rows and columns repeat the first; their sums
			// are dropped.
			var offA [ntRows]int
			var offB [ntCols]int
			for r := range offA {
				offA[r] = (i + min(r, rows-1)) * lda
			}
			for q := range offB {
				offB[q] = (j + min(q, cols-1)) * ldb
			}
			s := ntKernel(batch, k, a, offA, strideA, b, offB, strideB)
			zeroUpper() // the scalar adds below are SSE code
			for r := 0; r < rows; r++ {
				cr := c[(i+r)*ldc+j : (i+r)*ldc+j+cols]
				for q := range cr {
					cr[q] += s[r*ntCols+q]
				}
			}
		}
	}
}

// ntKernelGo returns the ntRows×ntCols sums of one tile in plain Go.
func ntKernelGo(batch, k int, a []float32, offA [ntRows]int, strideA int, b []float32, offB [ntCols]int, strideB int) [ntRows * ntCols]float32 {
	var s [ntRows * ntCols]float32
	for bi := 0; bi < batch; bi++ {
		for r, oa := range offA {
			ar := a[bi*strideA+oa : bi*strideA+oa+k]
			for q, ob := range offB {
				br := b[bi*strideB+ob : bi*strideB+ob+k]
				var acc float32
				for p, v := range ar {
					acc += v * br[p]
				}
				s[r*ntCols+q] += acc
			}
		}
	}
	return s
}

// GemmNTSumRef is GemmNTSum with plain loops, in T: the oracle and the
// float64 path.
func GemmNTSumRef[T Float](batch, m, n, k int, a []T, lda, strideA int, b []T, ldb, strideB int, c []T, ldc int) {
	for bi := 0; bi < batch; bi++ {
		for i := 0; i < m; i++ {
			ar := a[bi*strideA+i*lda : bi*strideA+i*lda+k]
			cr := c[i*ldc : i*ldc+n]
			for j := range cr {
				br := b[bi*strideB+j*ldb : bi*strideB+j*ldb+k]
				var acc T
				for p, v := range ar {
					acc += v * br[p]
				}
				cr[j] += acc
			}
		}
	}
}
