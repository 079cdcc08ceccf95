package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/sparkconf"
)

func runConfCheckTest(t *testing.T, args []string, stdin string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := confCheck(args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), err
}

func TestConfCheckReportsEveryProblemInOnePass(t *testing.T) {
	out, err := runConfCheckTest(t, nil, `{
		"spark.gocaffe.sync.mode": "sideways",
		"spark.gocaffe.sync.roundIteration": "50",
		"spark.gocaffe.goexec.memoryLimit": "lots",
		"spark.gocaffe.goexec.logLevel": "chatty",
		"spark.gocaffe.auth.secret": "short-secret",
		"spark.executor.memory": "2g"}`)
	if err == nil {
		t.Fatalf("no error; printed:\n%s", out)
	}
	if out != "" {
		t.Errorf("printed values despite problems:\n%s", out)
	}
	msg := err.Error()
	for _, want := range []string{
		"5 problems in GoCaffe's Spark settings:",
		`spark.gocaffe.sync.mode="sideways": not one of allreduce, average`,
		`spark.gocaffe.sync.roundIteration="50": unknown key (did you mean spark.gocaffe.sync.roundIterations?)`,
		`spark.gocaffe.goexec.memoryLimit="lots": not a size`,
		`spark.gocaffe.goexec.logLevel="chatty": not one of trace, debug, info, warn, error`,
		`spark.gocaffe.auth.secret=(secret): secret too short`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "short-secret") || strings.Contains(msg, "spark.executor.memory") {
		t.Errorf("error shows the secret or a Spark key it should ignore:\n%s", msg)
	}
}

func TestConfCheckFillsDefaults(t *testing.T) {
	out, err := runConfCheckTest(t, []string{"-json"}, `{"spark.gocaffe.sync.mode": "Average", "spark.gocaffe.goexec.memoryLimit": "512m", "spark.master": "local"}`)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in:\n%s", err, out)
	}
	reg, err := sparkconf.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range reg.Keys() {
		_, has := got[k.Name]
		if has != (k.Default != "") {
			t.Errorf("%s: in output %v, has default %v", k.Name, has, k.Default != "")
		}
	}
	for k, want := range map[string]any{
		sparkconf.KeySyncMode:           "average",
		sparkconf.KeyGoexecMemoryLimit:  float64(512 << 20),
		sparkconf.KeyRoundIterations:    float64(100),
		sparkconf.KeySlotWaitTimeout:    float64(120000),
		sparkconf.KeyGoexecLogLevel:     "info",
		sparkconf.KeyGoexecStartTimeout: float64(60000),
	} {
		if got[k] != want {
			t.Errorf("%s = %#v, want %#v", k, got[k], want)
		}
	}
	if _, ok := got["spark.master"]; ok {
		t.Errorf("Spark's own key echoed: %s", out)
	}
}

func TestConfCheckProperties(t *testing.T) {
	out, err := runConfCheckTest(t, []string{"spark.gocaffe.sync.roundIterations=25", "spark.gocaffe.data.cacheDir=/mnt/a b"}, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"spark.gocaffe.sync.roundIterations=25\n", "spark.gocaffe.data.cacheDir=/mnt/a b\n",
		"spark.gocaffe.sync.mode=allreduce\n", "spark.gocaffe.goexec.stopTimeout=15000\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
}

func TestConfCheckBadInput(t *testing.T) {
	for name, c := range map[string]struct {
		args  []string
		stdin string
		want  string
	}{
		"not json":     {nil, "spark.gocaffe.sync.mode=average", "want one JSON object"},
		"number value": {nil, `{"spark.gocaffe.sync.roundIterations": 5}`, "want one JSON object"},
		"two objects":  {nil, `{} {}`, "more than one JSON value"},
		"no equals":    {[]string{"spark.gocaffe.sync.mode"}, "", `argument "spark.gocaffe.sync.mode": want KEY=VALUE`},
	} {
		if _, err := runConfCheckTest(t, c.args, c.stdin); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
}
