package cpu

// Axpy computes y += alpha*x over len(x) elements (float32 runs Saxpy).
func Axpy[T Float](alpha T, x, y []T) {
	if x32, ok := any(x).([]float32); ok {
		Saxpy(float32(alpha), x32, any(y).([]float32))
		return
	}
	axpyGo(alpha, x, y[:len(x)])
}

// Scal computes x *= alpha (float32 runs Sscal).
func Scal[T Float](alpha T, x []T) {
	if x32, ok := any(x).([]float32); ok {
		Sscal(float32(alpha), x32)
		return
	}
	scalGo(alpha, x)
}

// Dot returns the dot product of x and y[:len(x)] (float32 runs Sdot).
func Dot[T Float](x, y []T) T {
	if x32, ok := any(x).([]float32); ok {
		return T(Sdot(x32, any(y).([]float32)))
	}
	return dotGo(x, y[:len(x)])
}

// Axpby computes y = alpha*x + beta*y over len(x) elements.
func Axpby[T Float](alpha T, x []T, beta T, y []T) {
	y = y[:len(x)]
	if beta == 0 {
		for i, v := range x {
			y[i] = alpha * v
		}
		return
	}
	Scal(beta, y)
	Axpy(alpha, x, y)
}

// Sum returns the sum of x's elements (float32 runs Ssum).
func Sum[T Float](x []T) T {
	if x32, ok := any(x).([]float32); ok {
		return T(Ssum(x32))
	}
	return sumGo(x)
}

// AddRowSums adds the sum of each row of x (len(out) rows of cols values)
// to out: a bias gradient's channels in one call (float32 runs
// SAddRowSums).
func AddRowSums[T Float](x []T, cols int, out []T) {
	if x32, ok := any(x).([]float32); ok {
		SAddRowSums(x32, cols, any(out).([]float32))
		return
	}
	addRowSumsGo(x, cols, out)
}

func addRowSumsGo[T Float](x []T, cols int, out []T) {
	for r := range out {
		out[r] += sumGo(x[r*cols : (r+1)*cols])
	}
}

// Shift computes x += alpha (float32 runs Sshift).
func Shift[T Float](alpha T, x []T) {
	if x32, ok := any(x).([]float32); ok {
		Sshift(float32(alpha), x32)
		return
	}
	shiftGo(alpha, x)
}

func sumGo[T Float](x []T) T {
	var s T
	for _, v := range x {
		s += v
	}
	return s
}

func shiftGo[T Float](alpha T, x []T) {
	for i := range x {
		x[i] += alpha
	}
}

// Fill sets every element of x to v.
func Fill[T Float](x []T, v T) {
	if v == 0 {
		clear(x)
		return
	}
	for i := range x {
		x[i] = v
	}
}

func axpyGo[T Float](alpha T, x, y []T) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

func scalGo[T Float](alpha T, x []T) {
	for i := range x {
		x[i] *= alpha
	}
}

func dotGo[T Float](x, y []T) T {
	y = y[:len(x)]
	var s T
	for i, v := range x {
		s += v * y[i]
	}
	return s
}

// CopyRows copies a rows×cols block: dst[y*ldd+x] = src[y*lds+x]
// (float32 runs SCopyRows).
func CopyRows[T Float](dst []T, ldd int, src []T, lds, rows, cols int) {
	if d32, ok := any(dst).([]float32); ok {
		SCopyRows(d32, ldd, any(src).([]float32), lds, rows, cols)
		return
	}
	copyRowsGo(dst, ldd, src, lds, rows, cols)
}

// AddRows adds a rows×cols block: dst[y*ldd+x] += src[y*lds+x]
// (float32 runs SAddRows).
func AddRows[T Float](dst []T, ldd int, src []T, lds, rows, cols int) {
	if d32, ok := any(dst).([]float32); ok {
		SAddRows(d32, ldd, any(src).([]float32), lds, rows, cols)
		return
	}
	addRowsGo(dst, ldd, src, lds, rows, cols)
}

func copyRowsGo[T Float](dst []T, ldd int, src []T, lds, rows, cols int) {
	for y := 0; y < rows; y++ {
		copy(dst[y*ldd:y*ldd+cols], src[y*lds:y*lds+cols])
	}
}

func addRowsGo[T Float](dst []T, ldd int, src []T, lds, rows, cols int) {
	for y := 0; y < rows; y++ {
		d, s := dst[y*ldd:y*ldd+cols], src[y*lds:y*lds+cols]
		for i := range d {
			d[i] += s[i]
		}
	}
}

// SGDMomentumRef is SGDMomentum for any element type, in plain Go.
func SGDMomentumRef[T Float](diff, data, hist []T, norm, decay, lr, mom T) {
	data = data[:len(diff)]
	hist = hist[:len(diff)]
	for j, g := range diff {
		if norm != 1 {
			g *= norm
		}
		g += decay * data[j]
		v := lr*g + mom*hist[j]
		hist[j] = v
		diff[j] = v
		data[j] -= v
	}
}
