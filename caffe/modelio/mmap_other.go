//go:build !unix

package modelio

import "os"

// withFile calls f with the contents of path, read into one buffer.
func withFile(path string, f func(data []byte) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return f(data)
}

func isInvalid(error) bool { return false }
