//go:build cuda

package cudnn

import (
	"strings"
	"testing"
)

func TestParseChoice(t *testing.T) {
	for _, c := range []Choice{Fastest, Deterministic, Heuristic} {
		got, err := ParseChoice(c.String())
		if err != nil || got != c {
			t.Errorf("ParseChoice(%q) = %v, %v; want %v", c.String(), got, err, c)
		}
	}
	if _, err := ParseChoice("quickest"); err == nil || !strings.Contains(err.Error(), `"quickest" is not a cuDNN algorithm choice`) {
		t.Errorf("ParseChoice(quickest): %v", err)
	}
}
