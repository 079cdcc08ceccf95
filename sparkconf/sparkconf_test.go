package sparkconf

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func registry(t *testing.T) *Registry {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDefaults(t *testing.T) {
	s, err := registry(t).Settings(map[string]string{"spark.executor.cores": "2"})
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{
		SyncMode: "allreduce", RoundIterations: 100, PeerTimeout: 2 * time.Minute, Connection: "ethernet",
		SlotWaitTimeout: 2 * time.Minute, GoexecLogLevel: "info", GoexecStartTimeout: time.Minute,
		GoexecStopTimeout: 15 * time.Second, GoexecLogTailLines: 20, PartitionPolicy: "uneven-epochs", NonFinite: "stop",
	}
	if s != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", s, want)
	}
	if s.ListenAddress != "" {
		t.Errorf("listen address defaults to %q; it must default to the executor's own IP, never 0.0.0.0", s.ListenAddress)
	}
}

func TestRequiredKeysDeclared(t *testing.T) {
	r := registry(t)
	for _, k := range []string{KeySyncMode, KeyRoundIterations, KeyGoexecLogLevel, KeyGoexecMemoryLimit, KeyCacheDir,
		KeySlotWaitTimeout, KeyConnection, KeyListenAddress, KeyAuthSecret} {
		if _, ok := r.Lookup(k); !ok {
			t.Errorf("key %s not declared", k)
		}
	}
}

func TestSettingsParsed(t *testing.T) {
	s, err := registry(t).Settings(map[string]string{
		KeySyncMode:          "AVERAGE",
		KeyRoundIterations:   " 250 ",
		KeyGoexecMemoryLimit: "3g",
		KeySlotWaitTimeout:   "5min",
		KeyPeerTimeout:       "1500ms",
		KeyListenAddress:     "0.0.0.0",
		KeyAuthSecret:        "0123456789abcdef0123",
		KeyCacheDir:          "/mnt/ssd/gocaffe",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.SyncMode != "average" || s.RoundIterations != 250 || s.GoexecMemoryLimit != 3<<30 ||
		s.SlotWaitTimeout != 5*time.Minute || s.PeerTimeout != 1500*time.Millisecond ||
		s.ListenAddress != "0.0.0.0" || s.CacheDir != "/mnt/ssd/gocaffe" {
		t.Errorf("parsed %+v", s)
	}
	if strings.Contains(s.String(), "0123456789abcdef") {
		t.Errorf("String() shows the secret: %s", s)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	secret := "hunter2"
	conf := map[string]string{
		"spark.gocaffe.sync.mod":             "average", // typo
		"spark.gocaffe.sync.roundIterations": "0",       // below 1
		KeyConnection:                        "carrier", // not an enum value
		KeySlotWaitTimeout:                   "soon",    // not a duration
		KeyAuthSecret:                        secret,    // too short
		KeyListenAddress:                     "host:99", // port not allowed
		"spark.gocaffe.zzzzzzzzzzzzzz":       "1",       // unknown, nothing close
		"spark.executor.memory":              "4g",      // Spark's own: ignored
		KeyGoexecMemoryLimit:                 "-1g",     // negative
		KeyGoexecLogLevel:                    "info",    // fine
	}
	err := registry(t).Validate(conf)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want *ValidationError", err)
	}
	got := map[string]string{}
	for _, p := range ve.Problems {
		got[p.Key] = p.Message
	}
	want := map[string]string{
		"spark.gocaffe.sync.mod":             "did you mean spark.gocaffe.sync.mode?",
		"spark.gocaffe.sync.roundIterations": "outside 1..",
		KeyConnection:                        "ethernet, infiniband",
		KeySlotWaitTimeout:                   "not a duration",
		KeyAuthSecret:                        "too short",
		KeyListenAddress:                     "without a port",
		"spark.gocaffe.zzzzzzzzzzzzzz":       "unknown key",
		KeyGoexecMemoryLimit:                 "not a size",
	}
	if len(got) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(got), len(want), err)
	}
	for k, frag := range want {
		if !strings.Contains(got[k], frag) {
			t.Errorf("problem for %s = %q, want it to contain %q", k, got[k], frag)
		}
	}
	if strings.Contains(got["spark.gocaffe.zzzzzzzzzzzzzz"], "did you mean") {
		t.Errorf("suggestion for a key close to nothing: %q", got["spark.gocaffe.zzzzzzzzzzzzzz"])
	}
	for _, line := range []string{
		`spark.gocaffe.connection="carrier": not one of ethernet, infiniband`,
		`spark.gocaffe.sync.roundIterations="0": outside 1..`,
		`spark.gocaffe.sync.mod="average": unknown key (did you mean spark.gocaffe.sync.mode?)`,
		`spark.gocaffe.auth.secret=(secret): secret too short`,
	} {
		if !strings.Contains(err.Error(), line) {
			t.Errorf("error does not contain %q:\n%v", line, err)
		}
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error shows the secret: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "8 problems") {
		t.Errorf("error text: %v", err)
	}
}

func TestDidYouMeanCase(t *testing.T) {
	err := registry(t).Validate(map[string]string{"spark.gocaffe.sync.ROUNDITERATIONS": "5", "spark.gocaffe.goexec.loglevel": "info"})
	if err == nil || !strings.Contains(err.Error(), "did you mean spark.gocaffe.sync.roundIterations?") ||
		!strings.Contains(err.Error(), "did you mean spark.gocaffe.goexec.logLevel?") {
		t.Errorf("Validate = %v", err)
	}
}

func TestParseUnits(t *testing.T) {
	for s, want := range map[string]time.Duration{"30s": 30 * time.Second, "30": 30 * time.Second, "500ms": 500 * time.Millisecond,
		"5min": 5 * time.Minute, "5m": 5 * time.Minute, "2h": 2 * time.Hour, "1d": 24 * time.Hour} {
		if got, err := parseDuration(s); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "s", "-1s", "1.5s", "1 fortnight", "9999999999999h"} {
		if _, err := parseDuration(s); err == nil {
			t.Errorf("parseDuration(%q) accepted", s)
		}
	}
	for s, want := range map[string]int64{"0": 0, "512m": 512 << 20, "4g": 4 << 30, "4GB": 4 << 30, "10k": 10 << 10, "7b": 7, "1t": 1 << 40} {
		if got, err := parseBytes(s); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "g", "-1m", "1.5g", "9999999999999t"} {
		if _, err := parseBytes(s); err == nil {
			t.Errorf("parseBytes(%q) accepted", s)
		}
	}
	for _, s := range []string{"10.0.0.7", "::1", "fe80::1", "node-3.cluster.local", "localhost"} {
		if err := checkHost(s); err != nil {
			t.Errorf("checkHost(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "10.0.0.7:7077", "a..b", "bad_host"} {
		if err := checkHost(s); err == nil {
			t.Errorf("checkHost(%q) accepted", s)
		}
	}
}

func TestNewRegistryChecksDeclarations(t *testing.T) {
	ok := Key{Name: "spark.gocaffe.a", Type: Int, Default: "1", Doc: "a"}
	for name, keys := range map[string][]Key{
		"duplicate":                  {ok, ok},
		"prefix":                     {{Name: "spark.other.a", Type: Int, Default: "1", Doc: "a"}},
		"bad default":                {{Name: "spark.gocaffe.b", Type: Bool, Default: "yes", Doc: "b"}},
		"no doc":                     {{Name: "spark.gocaffe.c", Type: Int, Default: "1"}},
		"enum values":                {{Name: "spark.gocaffe.d", Type: Enum, Default: "x", Doc: "d"}},
		"undocumented empty default": {{Name: "spark.gocaffe.e", Type: Path, Doc: "e"}},
	} {
		if _, err := NewRegistry(keys...); err == nil {
			t.Errorf("%s: declaration accepted", name)
		}
	}
	if _, err := NewRegistry(ok); err != nil {
		t.Errorf("good declaration: %v", err)
	}
}

// TestReadmeUpToDate fails when README.md's settings table differs from
// what the registry generates.
func TestReadmeUpToDate(t *testing.T) {
	path := filepath.Join("..", "README.md")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := registry(t).CheckDoc(string(got)); err != nil {
		t.Errorf("%s: the settings table is out of date with sparkconf's registry; regenerate it with: "+
			"go run ./sparkconf/cmd/gendocs\n%v", path, err)
	}
	for _, k := range registry(t).Keys() {
		if !strings.Contains(string(got), "`"+k.Name+"`") {
			t.Errorf("%s does not document %s", path, k.Name)
		}
	}
	// The README opens with its two commands; the table comes later.
	if first := strings.Index(string(got), "```"); first < 0 || strings.Index(string(got), BeginMarker) < first {
		t.Errorf("%s: the settings table must come after the first code block (make demo / make test)", path)
	}
}

// TestCheckDocSeesChangedDefault shows the README check failing when a
// declaration changes: one default differs, and the error names its row.
func TestCheckDocSeesChangedDefault(t *testing.T) {
	r := registry(t)
	doc, err := r.UpdateDoc("# T\n\n" + BeginMarker + "\n" + EndMarker + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CheckDoc(doc); err != nil {
		t.Fatalf("fresh doc: %v", err)
	}
	keys := declarations()
	for i := range keys {
		if keys[i].Name == KeyRoundIterations {
			keys[i].Default = "50"
		}
	}
	changed, err := NewRegistry(keys...)
	if err != nil {
		t.Fatal(err)
	}
	err = changed.CheckDoc(doc)
	if err == nil || !strings.Contains(err.Error(), "| `"+KeyRoundIterations+"` | int (1–1073741824) | `100` |") ||
		!strings.Contains(err.Error(), "`50`") {
		t.Errorf("CheckDoc after changing a default = %v; want the row of %s, have 100 and want 50", err, KeyRoundIterations)
	}
	if _, err := r.UpdateDoc("no markers here"); !errors.Is(err, ErrNoMarkers) {
		t.Errorf("UpdateDoc without markers = %v", err)
	}
}

func TestDynamicAllocationRefused(t *testing.T) {
	err := registry(t).Validate(map[string]string{"spark.dynamicAllocation.enabled": "true", "spark.gocaffe.sync.mode": "bogus"})
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Fatalf("Validate = %v, want 2 problems", err)
	}
	if !strings.Contains(err.Error(), `spark.dynamicAllocation.enabled="true": GoCaffe trains in barrier stages`) {
		t.Errorf("Validate = %v", err)
	}
	if err := registry(t).Validate(map[string]string{"spark.dynamicAllocation.enabled": "false"}); err != nil {
		t.Errorf("dynamic allocation off: %v", err)
	}
}

func TestJSON(t *testing.T) {
	r := registry(t)
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var keys []struct {
		Name, Type, Default string
		Values              []string
		Min, Max            *int64
	}
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(r.Keys()) {
		t.Fatalf("%d keys in JSON, registry has %d", len(keys), len(r.Keys()))
	}
	for i, k := range r.Keys() {
		j := keys[i]
		if j.Name != k.Name || j.Type != k.Type.String() || j.Default != k.Default || len(j.Values) != len(k.Values) {
			t.Errorf("JSON key %d = %+v, registry %+v", i, j, k)
		}
		if k.Name == KeyRoundIterations && (j.Min == nil || *j.Min != 1) {
			t.Errorf("roundIterations min lost: %+v", j)
		}
	}
}
