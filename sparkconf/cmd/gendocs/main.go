// Command gendocs writes docs/configuration.md from sparkconf's registry,
// and optionally the keys as JSON (for the JVM shim's resources).
//
//	go run ./sparkconf/cmd/gendocs [-o docs/configuration.md] [-json keys.json]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gocaffe/gocaffe/sparkconf"
)

func main() {
	out := flag.String("o", "docs/configuration.md", "file to write")
	js := flag.String("json", "", "also write the keys as JSON to this file")
	flag.Parse()
	if err := run(*out, *js); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func run(out, js string) error {
	r, err := sparkconf.New()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if js == "" {
		return nil
	}
	b, err := r.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(js, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", js, err)
	}
	return nil
}
