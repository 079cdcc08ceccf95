package cublas

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Setting is the environment variable that names the cuBLAS library to
// load, or "off" to use GoCaffe's own GEMM kernels only.
const Setting = "GOCAFFE_CUBLAS"

// Names are the library file names tried, newest first: on the dynamic
// loader's path and in each wheel folder.
var Names = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so"}

// wheelLibs are the folders, under a site-packages, where NVIDIA's pip
// wheels put libcublas (12.x: nvidia/cublas/lib; 13.x: nvidia/cu13/lib).
var wheelLibs = []string{"nvidia/cublas/lib", "nvidia/cu13/lib", "nvidia/cu12/lib"}

// Search is where to look for cuBLAS: the setting's value, the PATH
// entries whose python3 leads to site-packages, and further prefixes
// (a folder with lib/python3.*/{site,dist}-packages).
type Search struct {
	Setting  string   // GOCAFFE_CUBLAS: a path, "off", or ""
	Path     []string // PATH's folders
	Prefixes []string // more install prefixes (/usr/local, /usr, ~/.local)
}

// FromEnv is the search this process makes: GOCAFFE_CUBLAS, PATH, and the
// prefixes /usr/local, /usr, /opt/conda and ~/.local.
func FromEnv() Search {
	s := Search{Setting: strings.TrimSpace(os.Getenv(Setting)), Path: filepath.SplitList(os.Getenv("PATH")),
		Prefixes: []string{"/usr/local", "/usr", "/opt/conda"}}
	if h, err := os.UserHomeDir(); err == nil {
		s.Prefixes = append(s.Prefixes, filepath.Join(h, ".local"))
	}
	return s
}

// Off reports whether the setting turns cuBLAS off.
func (s Search) Off() bool { return strings.EqualFold(s.Setting, "off") }

// Candidate is one library to try: a bare name (the dynamic loader's
// search) or a file's path.
type Candidate struct {
	Lib   string // what dlopen gets
	Where string // how it was found: "GOCAFFE_CUBLAS", "library path", a wheel folder
}

// Candidates returns the libraries to try, in order: the setting's path
// alone when it is set; else the names on the library path, then each
// existing wheel folder's files. Nothing when the setting is "off".
func (s Search) Candidates() []Candidate {
	if s.Off() {
		return nil
	}
	if s.Setting != "" {
		return []Candidate{{s.Setting, Setting}}
	}
	var cs []Candidate
	for _, n := range Names {
		cs = append(cs, Candidate{n, "library path"})
	}
	for _, dir := range s.WheelDirs() {
		for _, n := range Names {
			if p := filepath.Join(dir, n); isFile(p) {
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
		if isFile(filepath.Join(d, "python3")) {
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
			for _, w := range wheelLibs {
				dir := filepath.Join(site, w)
				if !seen[dir] && isDir(dir) {
					seen[dir] = true
					dirs = append(dirs, dir)
				}
			}
		}
	}
	return dirs
}

// NotFound is the one log line for a node without cuBLAS: where it looked.
func (s Search) NotFound(tried []string) string {
	if s.Off() {
		return fmt.Sprintf("cuBLAS off (%s=off): GEMMs run on GoCaffe's own CUDA kernels", Setting)
	}
	if s.Setting != "" {
		return fmt.Sprintf("cuBLAS not loaded from %s=%s (%s): GEMMs run on GoCaffe's own CUDA kernels",
			Setting, s.Setting, strings.Join(tried, "; "))
	}
	wd := s.WheelDirs()
	where := "no pip wheel folder (site-packages/nvidia/{cublas,cu13,cu12}/lib under python3 on PATH, /usr/local, /usr, /opt/conda, ~/.local)"
	if len(wd) > 0 {
		where = "pip wheel folders " + strings.Join(wd, ", ")
	}
	return fmt.Sprintf("cuBLAS not found (%s unset; looked for %s on the library path and in %s; %s): GEMMs run on GoCaffe's own CUDA kernels",
		Setting, strings.Join(Names, ", "), where, strings.Join(tried, "; "))
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
