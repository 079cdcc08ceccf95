//go:build !cgo

package db

import "errors"

// errNoCgo: LMDB is compiled from its C source through cgo.
var errNoCgo = errors.New("LMDB support needs a goexec built with cgo (CGO_ENABLED=1)")

func openLMDB(path string) (DB, error) { return nil, errNoCgo }

func createLMDB(path string) (Writer, error) { return nil, errNoCgo }
