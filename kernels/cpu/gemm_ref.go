package cpu

// GemmRef computes C = alpha*op(A)*op(B) + beta*C with plain loops, in T.
// Matrices are row-major; op(X) is X or its transpose. op(A) is m×k, op(B)
// is k×n and C is m×n; lda, ldb and ldc are the row strides of the stored
// A, B and C. With beta == 0, C is overwritten (NaNs in C do not survive).
// It is the oracle the fast kernels are tested against and the float64
// path of the layers.
func GemmRef[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(ci)
		} else if beta != 1 {
			for j := range ci {
				ci[j] *= beta
			}
		}
		if alpha == 0 {
			continue
		}
		for p := 0; p < k; p++ {
			var aip T
			if transA {
				aip = a[p*lda+i]
			} else {
				aip = a[i*lda+p]
			}
			aip *= alpha
			if transB {
				for j := range ci {
					ci[j] += aip * b[j*ldb+p]
				}
			} else {
				bp := b[p*ldb : p*ldb+n]
				for j, v := range bp {
					ci[j] += aip * v
				}
			}
		}
	}
}
