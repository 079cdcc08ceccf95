// Package libsearch finds an optional NVIDIA library (cuBLAS, cuDNN) that
// GoCaffe loads at run time with dlopen: a setting (a path, or "off"),
// the dynamic loader's path, then the lib folders of NVIDIA's pip wheels
// under each python3 on PATH and a few install prefixes. It only lists
// candidates and words the line logged when none loads; loading is the
// library's own package's (cgo, build tag cuda).
package libsearch

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Lib describes one library to look for.
type Lib struct {
	Name    string   // as logged: "cuBLAS"
	Var     string   // the environment variable: a path, or "off"
	Names   []string // file names tried, newest first
	Wheels  []string // folders under a site-packages where its wheels put it ("nvidia/cublas/lib")
	Instead string   // what runs without it: "GEMMs run on GoCaffe's own CUDA kernels"
}

// Search is where to look for one library: the setting's value, the PATH
// entries whose python3 leads to site-packages, and further prefixes (a
// folder with lib/python3.*/{site,dist}-packages).
type Search struct {
	Lib      Lib
	Setting  string   // Lib.Var's value: a path, "off", or ""
	Path     []string // PATH's folders
	Prefixes []string // more install prefixes (/usr/local, /usr, ~/.local)
}

// FromEnv is the search this process makes for l: its variable, PATH, and
// the prefixes /usr/local, /usr, /opt/conda and ~/.local.
func FromEnv(l Lib) Search {
	s := Search{Lib: l, Setting: strings.TrimSpace(os.Getenv(l.Var)), Path: filepath.SplitList(os.Getenv("PATH")),
		Prefixes: []string{"/usr/local", "/usr", "/opt/conda"}}
	if h, err := os.UserHomeDir(); err == nil {
		s.Prefixes = append(s.Prefixes, filepath.Join(h, ".local"))
	}
	return s
}

// Off reports whether the setting turns the library off.
func (s Search) Off() bool { return strings.EqualFold(s.Setting, "off") }

// Candidate is one library to try: a bare name (the dynamic loader's
// search) or a file's path.
type Candidate struct {
	Lib   string // what dlopen gets
	Where string // how it was found: the variable's name, "library path", a wheel folder
}

// Candidates returns the libraries to try, in order: the setting's path
// alone when it is set; else the names on the library path, then each
// existing wheel folder's files. Nothing when the setting is "off".
func (s Search) Candidates() []Candidate {
	if s.Off() {
		return nil
	}
	if s.Setting != "" {
		return []Candidate{{s.Setting, s.Lib.Var}}
	}
	var cs []Candidate
	for _, n := range s.Lib.Names {
		cs = append(cs, Candidate{n, "library path"})
	}
	for _, dir := range s.WheelDirs() {
		for _, n := range s.Lib.Names {
			if p := filepath.Join(dir, n); IsFile(p) {
				cs = append(cs, Candidate{p, dir})
			}
		}
	}
	return cs
}

// WheelDirs returns the existing wheel lib folders, in search order: for
// each PATH folder holding a python3, the site-packages of its prefix
// (the folder above it: a venv or an install prefix), then the prefixes'.
func (s Search) WheelDirs() []string {
	var prefixes []string
	for _, d := range s.Path {
		if d == "" {
			continue
		}
		if IsFile(filepath.Join(d, "python3")) {
			prefixes = append(prefixes, filepath.Dir(filepath.Clean(d)))
		}
	}
	prefixes = append(prefixes, s.Prefixes...)
	var dirs []string
	seen := map[string]bool{}
	for _, pre := range prefixes {
		var sites []string
		for _, pat := range []string{"lib/python3*/site-packages", "lib/python3*/dist-packages", "lib/python3/dist-packages"} {
			m, _ := filepath.Glob(filepath.Join(pre, pat))
			sort.Sort(sort.Reverse(sort.StringSlice(m))) // python3.12 before python3.11
			sites = append(sites, m...)
		}
		for _, site := range sites {
			for _, w := range s.Lib.Wheels {
				dir := filepath.Join(site, w)
				if !seen[dir] && IsDir(dir) {
					seen[dir] = true
					dirs = append(dirs, dir)
				}
			}
		}
	}
	return dirs
}

// wheelPattern is the wheel folders in one phrase:
// "site-packages/nvidia/{cublas,cu13,cu12}/lib".
func (l Lib) wheelPattern() string {
	var mid []string
	for _, w := range l.Wheels {
		mid = append(mid, strings.TrimSuffix(strings.TrimPrefix(w, "nvidia/"), "/lib"))
	}
	if len(mid) == 1 {
		return "site-packages/nvidia/" + mid[0] + "/lib"
	}
	return "site-packages/nvidia/{" + strings.Join(mid, ",") + "}/lib"
}

// NotFound is the one log line for a node without the library: where it
// looked, and what was found but failed to load (tried).
func (s Search) NotFound(tried []string) string {
	l := s.Lib
	if s.Off() {
		return fmt.Sprintf("%s off (%s=off): %s", l.Name, l.Var, l.Instead)
	}
	if s.Setting != "" {
		return fmt.Sprintf("%s not loaded from %s=%s (%s): %s", l.Name, l.Var, s.Setting, strings.Join(tried, "; "), l.Instead)
	}
	wd := s.WheelDirs()
	where := "no pip wheel folder (" + l.wheelPattern() + " under python3 on PATH, /usr/local, /usr, /opt/conda, ~/.local)"
	if len(wd) > 0 {
		where = "pip wheel folders " + strings.Join(wd, ", ")
	}
	return fmt.Sprintf("%s not found (%s unset; looked for %s on the library path and in %s; %s): %s",
		l.Name, l.Var, strings.Join(l.Names, ", "), where, strings.Join(tried, "; "), l.Instead)
}

// IsFile reports whether p is an existing file (not a folder).
func IsFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// IsDir reports whether p is an existing folder.
func IsDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
