package caffepb_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the Go code of every proto dir that
// scripts/genproto.sh lists (caffe.pb.go here, and goexec/rpc/goexecpb) with
// the pinned tools (through genproto.sh --check, into a temporary directory)
// and fails on any difference from the committed files.
//
// The tools are not installed by the test: on a fresh machine run
// scripts/genproto.sh --install once (it needs python3, go and access to
// PyPI and the Go module proxy). Missing tools fail the test; they never
// skip it.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "genproto.sh"), "--check")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.ExitCode() == 2:
		t.Fatalf("protoc tools are not installed; run scripts/genproto.sh --install, then rerun this test:\n%s", out)
	default:
		t.Fatalf("generated Go code is not what its .proto generates (run scripts/genproto.sh and commit): %v\n%s", err, out)
	}
}
