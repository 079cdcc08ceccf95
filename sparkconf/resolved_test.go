package sparkconf

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestResolvedCanonicalForms(t *testing.T) {
	v, err := registry(t).Resolve(map[string]string{
		KeySyncMode:          "Average",
		KeyPeerTimeout:       "2min",
		KeyGoexecMemoryLimit: "300m",
		KeyCacheDir:          "/data/caché dir=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := v.Resolved()
	want := map[string]any{
		KeySyncMode:           "average",
		KeyPeerTimeout:        int64(120000),
		KeyGoexecMemoryLimit:  int64(300 << 20),
		KeyRoundIterations:    int64(100),
		KeyGoexecStartTimeout: int64(60000),
		KeyCacheDir:           "/data/caché dir=1",
	}
	for k, w := range want {
		if r[k] != w {
			t.Errorf("%s = %#v, want %#v", k, r[k], w)
		}
	}
	for _, k := range []string{KeyAuthSecret, KeyListenAddress, KeyGoexecBinary} {
		if _, ok := r[k]; ok {
			t.Errorf("%s has a value though unset and without default: %#v", k, r[k])
		}
	}
	withDefault := 0
	for _, k := range registry(t).Keys() {
		if k.Default != "" {
			withDefault++
		}
	}
	if len(r) != withDefault+1 { // the defaults and the cache directory
		t.Errorf("%d resolved keys: %v", len(r), r)
	}

	var props strings.Builder
	if err := v.WriteProperties(&props); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"spark.gocaffe.sync.mode=average\n",
		"spark.gocaffe.sync.peerTimeout=120000\n",
		"spark.gocaffe.goexec.memoryLimit=314572800\n",
		`spark.gocaffe.data.cacheDir=/data/cach\u00e9 dir\=1` + "\n",
	} {
		if !strings.Contains(props.String(), line) {
			t.Errorf("properties lack %q:\n%s", line, props.String())
		}
	}

	b, err := v.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back[KeyPeerTimeout] != float64(120000) || back[KeySyncMode] != "average" {
		t.Errorf("JSON: %s", b)
	}
}

func TestEscapeProperty(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     "plain",
		" lead":     `\ lead`,
		"a b":       "a b",
		`c:\x=#!`:   `c\:\\x\=\#\!`,
		"tab\tnl\n": `tab\tnl\n`,
		"€𝄞":        `\u20ac\ud834\udd1e`,
	} {
		if got := escapeProperty(in, false); got != want {
			t.Errorf("escapeProperty(%q) = %q, want %q", in, got, want)
		}
	}
	if got := escapeProperty("a b", true); got != `a\ b` {
		t.Errorf("key escape = %q", got)
	}
}

func TestPathRejectsControlCharacters(t *testing.T) {
	err := registry(t).Validate(map[string]string{KeyCacheDir: "/tmp/a\nb"})
	if err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("Validate = %v", err)
	}
}

func TestEmptySecretIsUnset(t *testing.T) {
	v, err := registry(t).Resolve(map[string]string{KeyAuthSecret: " "})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Resolved()[KeyAuthSecret]; ok {
		t.Errorf("empty secret resolved to a value; want unset (the driver generates one)")
	}
}
