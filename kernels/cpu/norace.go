//go:build !race

package cpu

// maskedPartsOK reports whether archsimd's masked partial loads and stores
// of short slices may be used (see race.go).
const maskedPartsOK = true
