// Command gendocs writes the settings table generated from sparkconf's
// registry into README.md (between sparkconf's marker comments), and
// optionally the keys as JSON.
//
//	go run ./sparkconf/cmd/gendocs [-readme README.md] [-json keys.json]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gocaffe/gocaffe/sparkconf"
)

func main() {
	readme := flag.String("readme", "README.md", "file whose sparkconf block to rewrite")
	js := flag.String("json", "", "also write the keys as JSON to this file")
	flag.Parse()
	if err := run(*readme, *js); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func run(readme, js string) error {
	r, err := sparkconf.New()
	if err != nil {
		return err
	}
	old, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	doc, err := r.UpdateDoc(string(old))
	if err != nil {
		return fmt.Errorf("%s: %w", readme, err)
	}
	if doc != string(old) {
		if err := os.WriteFile(readme, []byte(doc), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", readme, err)
		}
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
