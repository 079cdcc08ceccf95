//go:build cuda

package cudnn

import (
	"strings"
	"testing"
)

func TestParseChoice(t *testing.T) {
	for _, c := range []Choice{Auto, Fastest, Deterministic, Heuristic} {
		got, err := ParseChoice(c.String())
		if err != nil || got != c {
			t.Errorf("ParseChoice(%q) = %v, %v; want %v", c.String(), got, err, c)
		}
	}
	if _, err := ParseChoice("quickest"); err == nil || !strings.Contains(err.Error(), `"quickest" is not a cuDNN algorithm choice`) {
		t.Errorf("ParseChoice(quickest): %v", err)
	}
}

// Auto's threshold sits between the shapes where cuDNN's trials were
// measured to lose (LeNet b64) and to win (CIFAR-10 quick b100, LeNet b4096).
func TestAutoThreshold(t *testing.T) {
	for _, c := range []struct {
		name string
		s    Shape
		find bool
	}{
		{"LeNet conv1 b64", Shape{N: 64, C: 1, K: 20, Groups: 1, KH: 5, KW: 5, OH: 24, OW: 24}, false},
		{"LeNet conv2 b64", Shape{N: 64, C: 20, K: 50, Groups: 1, KH: 5, KW: 5, OH: 8, OW: 8}, false},
		{"CIFAR-10 quick conv1 b100", Shape{N: 100, C: 3, K: 32, Groups: 1, KH: 5, KW: 5, OH: 32, OW: 32}, true},
		{"LeNet conv1 b4096", Shape{N: 4096, C: 1, K: 20, Groups: 1, KH: 5, KW: 5, OH: 24, OW: 24}, true},
	} {
		if got := c.s.MACs() >= AutoFindMACs; got != c.find {
			t.Errorf("%s (%d multiply-adds): trial runs %v, want %v", c.name, c.s.MACs(), got, c.find)
		}
	}
}
