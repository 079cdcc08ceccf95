//go:build cuda

package cuda

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

// The fatbins `make cuda-kernels` builds from src/*.cu (a build output,
// not committed: see kernels/cuda/README.md).
//
//go:embed fatbin/*.fatbin
var fatbins embed.FS

// fatbinImages returns the embedded fatbins by file name, sorted.
func fatbinImages() ([]string, map[string][]byte, error) {
	names, err := fs.Glob(fatbins, "fatbin/*.fatbin")
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	images := make(map[string][]byte, len(names))
	for _, n := range names {
		b, err := fatbins.ReadFile(n)
		if err != nil {
			return nil, nil, fmt.Errorf("embedded %s: %w", n, err)
		}
		images[n] = b
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("no CUDA kernels embedded (run `make cuda-kernels`)")
	}
	return names, images, nil
}
