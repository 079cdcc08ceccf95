package server

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedRPCCodeIsCurrent checks that goexec/rpc/goexecpb is what
// goexec/rpc/goexec.proto generates with the pinned tools.
func TestGeneratedRPCCodeIsCurrent(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "genproto.sh"), "--check", "goexec/rpc")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.ExitCode() == 2:
		t.Fatalf("protoc tools are not installed (scripts/setup.sh installs them):\n%s", out)
	default:
		t.Fatalf("goexec/rpc/goexecpb is not what goexec.proto generates (run scripts/genproto.sh and commit): %v\n%s", err, out)
	}
}
