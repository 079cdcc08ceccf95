package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gocaffe/gocaffe/sparkconf"
)

// runConfCheck checks GoCaffe's Spark settings for the Spark driver.
func runConfCheck(args []string) error { return confCheck(args, os.Stdin, os.Stdout, os.Stderr) }

const confCheckUsage = `usage: goexec conf-check [-json] [KEY=VALUE ...]

Checks Spark settings against sparkconf's registry of spark.gocaffe.* keys,
in one pass: every value that does not parse or pass its check, and every
unknown spark.gocaffe.* key (with the nearest declared one), is reported
together; then the exit status is 1. Other Spark keys are ignored, except
those GoCaffe cannot run with (spark.dynamicAllocation.enabled=true).

The settings come as KEY=VALUE arguments or, without arguments, as one JSON
object of strings on standard input (how the Spark driver passes its
SparkConf, so that a secret never shows in a process list). On success it
prints every key that has a value, defaults filled in, in Java's properties
format: durations in milliseconds, sizes in bytes. -json prints the same as
a JSON object.

flags:
`

func confCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("conf-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), confCheckUsage)
		fs.PrintDefaults()
	}
	asJSON := fs.Bool("json", false, "print the resolved settings as JSON instead of properties")
	if err := fs.Parse(args); err != nil {
		return err
	}
	conf, err := readConf(fs.Args(), stdin)
	if err != nil {
		return err
	}
	reg, err := sparkconf.New()
	if err != nil {
		return err
	}
	vals, err := reg.Resolve(conf)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := vals.JSON()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	return vals.WriteProperties(stdout)
}

// readConf reads the settings from KEY=VALUE arguments or, when there are
// none, from a JSON object of strings on stdin.
func readConf(args []string, stdin io.Reader) (map[string]string, error) {
	conf := map[string]string{}
	if len(args) > 0 {
		var bad []string
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			if !ok || strings.TrimSpace(k) == "" {
				bad = append(bad, fmt.Sprintf("argument %q: want KEY=VALUE", a))
				continue
			}
			conf[strings.TrimSpace(k)] = v
		}
		if len(bad) > 0 {
			return nil, errors.New(strings.Join(bad, "; "))
		}
		return conf, nil
	}
	dec := json.NewDecoder(stdin)
	if err := dec.Decode(&conf); err != nil {
		return nil, fmt.Errorf("standard input: want one JSON object of string values: %w", err)
	}
	if dec.More() {
		return nil, errors.New("standard input: more than one JSON value")
	}
	return conf, nil
}
