package main

import (
	"flag"
	"fmt"
	"runtime"
	"strings"
)

// version is goexec's version, set at build time with
// -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// runVersion prints goexec's version, Go toolchain and platform.
func runVersion(args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	short := fs.Bool("short", false, "print only the version string")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", strings.Join(fs.Args(), " "))
	}
	if *short {
		fmt.Println(version)
		return nil
	}
	fmt.Printf("goexec %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
