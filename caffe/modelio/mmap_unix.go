//go:build unix

package modelio

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

// withFile calls f with the contents of path, mapped read-only. The mapping
// is released when f returns, so f must not keep data (proto.Unmarshal
// copies what it keeps). If the file shrinks under the mapping (another
// process truncating it), the fault becomes an error, not a crash.
func withFile(path string, f func(data []byte) error) (err error) {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 || !fi.Mode().IsRegular() {
		// Nothing to map (or not mappable): read it normally.
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return f(data)
	}
	if size != int64(int(size)) {
		return fmt.Errorf("%s: file too large to map (%d bytes)", path, size)
	}
	data, err := syscall.Mmap(int(file.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mapping %s: %w", path, err)
	}
	defer func() {
		if uerr := syscall.Munmap(data); uerr != nil && err == nil {
			err = fmt.Errorf("unmapping %s: %w", path, uerr)
		}
	}()
	return callGuarded(path, data, f)
}

// callGuarded runs f(data) with memory faults turned into an error.
func callGuarded(path string, data []byte, f func([]byte) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if re, ok := r.(runtime.Error); ok && strings.Contains(re.Error(), "fault") {
				err = fmt.Errorf("reading %s: file changed while being read: %v", path, re)
				return
			}
			panic(r)
		}
	}()
	return f(data)
}

func isInvalid(err error) bool { return errors.Is(err, syscall.EINVAL) }
