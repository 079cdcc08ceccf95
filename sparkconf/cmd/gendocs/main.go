// Command gendocs writes docs/configuration.md from sparkconf's registry.
//
//	go run ./sparkconf/cmd/gendocs [-o docs/configuration.md]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gocaffe/gocaffe/sparkconf"
)

func main() {
	out := flag.String("o", "docs/configuration.md", "file to write")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func run(out string) error {
	r, err := sparkconf.New()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}
