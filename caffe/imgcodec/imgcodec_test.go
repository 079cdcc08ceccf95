package imgcodec

import (
	"os"
	"testing"
)

// decodeFile decodes a file to CHW planes with want channels.
func decodeFile(t *testing.T, path string, want int) (pix []byte, c, h, w int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c = Channels(img, want)
	h, w = img.Bounds().Dy(), img.Bounds().Dx()
	pix = make([]byte, c*h*w)
	WriteCHW(pix, img, c)
	return pix, c, h, w
}

func diff(a, b []byte) (maxDiff int, mean float64) {
	var sum int
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
		maxDiff = max(maxDiff, d)
	}
	return maxDiff, float64(sum) / float64(len(a))
}

// TestDecodeMatchesOpenCV compares decodes with opencv-python-headless
// 5.1.0's cv2.imdecode (IMREAD_COLOR and IMREAD_GRAYSCALE) of the same
// files (scripts/gen_image_fixtures.py; OpenCV's decodes are stored as
// PNG, which decodes exactly). The tolerances are the largest differences
// per pixel value this decoder shows against OpenCV's libjpeg-turbo:
// colour PNG is exact, its grayscale within 1 (a few pixels: OpenCV's PNG
// path rounds the weighted sum its own way); a JPEG's grayscale is its
// luma, within 1 (the IDCTs round differently); colour JPEG is within 3 at
// any chroma subsampling (mean under 0.1), as chroma is upsampled with
// libjpeg's filter (Go's own conversion was up to 66 off at 4:2:0).
func TestDecodeMatchesOpenCV(t *testing.T) {
	for _, c := range []struct {
		file      string
		colorTol  int
		grayTol   int
		wantChans int // channels of an unchanged decode
	}{
		{"colour.png", 0, 1, 3},
		{"colour444.jpg", 3, 1, 3},
		{"colour422.jpg", 2, 1, 3},
		{"colour420.jpg", 2, 1, 3},
		{"gray.jpg", 1, 1, 1},
	} {
		dir := "testdata/"
		for _, m := range []struct {
			mode string
			want int
			tol  int
		}{{"color", 3, c.colorTol}, {"gray", 1, c.grayTol}} {
			got, ch, h, w := decodeFile(t, dir+c.file, m.want)
			ref, rc, rh, rw := decodeFile(t, dir+c.file+"."+m.mode+".png", m.want)
			if ch != rc || h != rh || w != rw {
				t.Fatalf("%s %s: %d×%d×%d, OpenCV %d×%d×%d", c.file, m.mode, ch, h, w, rc, rh, rw)
			}
			mx, mean := diff(got, ref)
			t.Logf("%-14s %-5s max |Δ| %d, mean %.3f", c.file, m.mode, mx, mean)
			if mx > m.tol {
				t.Errorf("%s %s: max difference %d from OpenCV, tolerance %d", c.file, m.mode, mx, m.tol)
			}
		}
		b, _ := os.ReadFile(dir + c.file)
		img, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := Channels(img, 0); got != c.wantChans {
			t.Errorf("%s: unchanged decode has %d channels, want %d", c.file, got, c.wantChans)
		}
	}
}

// TestResizeMatchesOpenCV compares ResizeCHW with cv2.resize INTER_LINEAR
// (47×33 to 29×21) on the same input planes: within 1 (rounding).
func TestResizeMatchesOpenCV(t *testing.T) {
	src, c, h, w := decodeFile(t, "testdata/colour444.jpg.color.png", 3)
	ref, _, rh, rw := decodeFile(t, "testdata/resize.png", 3)
	got := make([]byte, c*rh*rw)
	ResizeCHW(got, rh, rw, src, c, h, w)
	mx, mean := diff(got, ref)
	t.Logf("resize %d×%d -> %d×%d: max |Δ| %d, mean %.3f", h, w, rh, rw, mx, mean)
	if mx > 1 {
		t.Errorf("resize differs from OpenCV by up to %d, tolerance 1", mx)
	}
}

func TestDecodeRejectsUnknown(t *testing.T) {
	if _, err := Decode([]byte("GIF89a....")); err != ErrUnknownImageFormat {
		t.Errorf("GIF: %v, want ErrUnknownImageFormat", err)
	}
	if _, err := Decode([]byte("\x89PNG\r\n\x1a\ntruncated")); err == nil {
		t.Error("truncated PNG: no error")
	}
}
