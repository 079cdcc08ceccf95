package sparkconf

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// keyLiteral matches spark.gocaffe.* names in source text; a match ending
// in "." (as in "spark.gocaffe.goexec.*") is a prefix.
var keyLiteral = regexp.MustCompile(`spark\.gocaffe\.(?:[A-Za-z0-9_]+\.?)*`)

// shimKeys returns every spark.gocaffe.* name written in the JVM shim's
// sources, with the files that write it.
func shimKeys(t *testing.T) map[string][]string {
	t.Helper()
	root := filepath.Join("..", "jvm-shim", "src")
	found := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".scala") || strings.HasSuffix(path, ".java")) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range keyLiteral.FindAllString(string(b), -1) {
			found[m] = append(found[m], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatalf("no spark.gocaffe.* names found under %s", root)
	}
	return found
}

// TestShimKeysDeclared fails when the Scala shim names a spark.gocaffe.*
// key that the registry does not declare (a typo, or a key read behind
// sparkconf's back), and when a declared key is read nowhere in the shim.
func TestShimKeysDeclared(t *testing.T) {
	r := registry(t)
	found := shimKeys(t)
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasSuffix(n, ".") {
			ok := false
			for _, k := range r.Keys() {
				ok = ok || strings.HasPrefix(k.Name, n)
			}
			if !ok {
				t.Errorf("%s names %s*, but no declared key starts with it", found[n][0], n)
			}
			continue
		}
		if _, ok := r.Lookup(n); !ok {
			msg := ""
			if s := r.suggest(n); s != "" {
				msg = " (did you mean " + s + "?)"
			}
			t.Errorf("%s reads %s, which sparkconf/keys.go does not declare%s", strings.Join(found[n], ", "), n, msg)
		}
	}
	for _, k := range r.Keys() {
		if _, ok := found[k.Name]; !ok {
			t.Errorf("%s is declared but the JVM shim never reads it: use it or remove its declaration", k.Name)
		}
	}
}

// directRead matches a SparkConf getter given a spark.gocaffe.* key.
var directRead = regexp.MustCompile(`\.(?:get|getOption|getInt|getLong|getBoolean|getDouble|getTimeAsMs|getTimeAsSeconds|getSizeAsBytes|getSizeAsMb|getAll|contains)\(\s*"spark\.gocaffe\.`)

// TestShimReadsOnlyResolved fails when a shim file reads a spark.gocaffe.*
// key from the SparkConf itself (with its own default and parsing) instead
// of from GoCaffeConf's resolved values.
func TestShimReadsOnlyResolved(t *testing.T) {
	root := filepath.Join("..", "jvm-shim", "src")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".scala") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if directRead.MatchString(line) {
				t.Errorf("%s:%d reads a spark.gocaffe.* key from the SparkConf; read it from GoCaffeConf: %s",
					path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestShimHasNoDefaults fails when GoCaffeConf.scala, the shim's one reader
// of the resolved settings, names a key itself (defaults and checks live in
// the registry only; call sites name the keys they read).
func TestShimHasNoDefaults(t *testing.T) {
	path := filepath.Join("..", "jvm-shim", "src", "main", "scala", "com", "gocaffe", "shim", "GoCaffeConf.scala")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range keyLiteral.FindAllString(string(b), -1) {
		if !strings.HasSuffix(m, ".") {
			t.Errorf("%s names the key %s; GoCaffeConf must stay generic", path, m)
		}
	}
}
