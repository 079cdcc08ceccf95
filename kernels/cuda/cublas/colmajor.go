package cublas

// ColGemm is a column-major (BLAS) GEMM call: C = op(A)·op(B), C M×N.
type ColGemm struct {
	TransA, TransB int // 0 N, 1 T (cublasOperation_t)
	M, N, K        int
	A              uintptr
	LDA, StrideA   int
	B              uintptr
	LDB, StrideB   int
}

// ColMajor turns GoCaffe's row-major c (m×n, ldc) = op(a)·op(b) into the
// column-major call cuBLAS makes: a row-major matrix is its transpose
// column-major, so cᵀ (n×m) = op(b)ᵀ·op(a)ᵀ, with b first and the
// transpose flags kept (ldc stays ldc).
func ColMajor(ta, tb bool, m, n, k int, a uintptr, lda, strideA int, b uintptr, ldb, strideB int) ColGemm {
	op := func(t bool) int {
		if t {
			return 1
		}
		return 0
	}
	return ColGemm{TransA: op(tb), TransB: op(ta), M: n, N: m, K: k, A: b, LDA: ldb, StrideA: strideB, B: a, LDB: lda, StrideB: strideA}
}
