//go:build integration

// Package integration runs GoCaffe end to end on real Spark: the built jar
// through spark-submit on a local-cluster and on a standalone master with two
// workers on 127.0.0.1. Run it with `make test` (or `make integration`), which
// builds the jar and the pyspark venv first. Missing prerequisites fail the
// tests; they never skip.
//
// Environment: GOCAFFE_JAR (default build/libs/gocaffe.jar), SPARK_HOME
// (default: the pyspark inside .venv).
package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the module root (this file lives in integration/).
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

type sparkEnv struct {
	root      string
	jar       string
	sparkHome string
	tmp       string   // java.io.tmpdir of the executors, private to the test
	env       []string // more environment for Spark processes (HADOOP_CONF_DIR on YARN)
}

// setup finds the jar and Spark; anything missing is a failure, not a skip.
func setup(t *testing.T) sparkEnv {
	t.Helper()
	root := repoRoot(t)
	jar := os.Getenv("GOCAFFE_JAR")
	if jar == "" {
		jar = filepath.Join(root, "build", "libs", "gocaffe.jar")
	}
	if _, err := os.Stat(jar); err != nil {
		t.Fatalf("GoCaffe jar: %v (build it with `make jar`)", err)
	}
	home := os.Getenv("SPARK_HOME")
	if home == "" {
		matches, _ := filepath.Glob(filepath.Join(root, ".venv", "lib", "python3*", "site-packages", "pyspark"))
		if len(matches) == 0 {
			t.Fatalf("SPARK_HOME unset and no pyspark in %s/.venv (run `make venv`)", root)
		}
		home = matches[0]
	}
	if _, err := os.Stat(filepath.Join(home, "bin", "spark-submit")); err != nil {
		t.Fatalf("spark-submit in SPARK_HOME %s: %v", home, err)
	}
	tmp := t.TempDir()
	return sparkEnv{root: root, jar: jar, sparkHome: privateSparkHome(t, home, tmp), tmp: tmp}
}

// privateSparkHome mirrors Spark's installation at home into tmp/spark-home,
// one symlink per entry, so that what a local-cluster worker writes under
// $SPARK_HOME/work (a copy of the 50 MB jar and the logs of each executor)
// goes into the test's temporary directory and is removed with it: 30
// applications left 2.8 GB in the real home's work/ on every `make test`.
func privateSparkHome(t *testing.T, home, tmp string) string {
	t.Helper()
	entries, err := os.ReadDir(home)
	if err != nil {
		t.Fatalf("SPARK_HOME %s: %v", home, err)
	}
	private := filepath.Join(tmp, "spark-home")
	if err := os.Mkdir(private, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.Name() == "work" {
			continue
		}
		if err := os.Symlink(filepath.Join(home, en.Name()), filepath.Join(private, en.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return private
}

// environ is the environment for Spark processes: loopback only.
func (e sparkEnv) environ() []string {
	return append(append(os.Environ(),
		"SPARK_HOME="+e.sparkHome,
		"SPARK_LOCAL_IP=127.0.0.1",
		"SPARK_LOCAL_HOSTNAME=localhost",
		"PYSPARK_PYTHON=python3",
	), e.env...)
}

type result struct {
	out      string // stdout
	combined string // stdout + stderr
	code     int
	took     time.Duration
}

// submit runs spark-submit with the jar and runner args; it fails the test if
// the command outlives timeout (a hang).
func (e sparkEnv) submit(t *testing.T, timeout time.Duration, master string, sparkArgs []string, args ...string) result {
	t.Helper()
	full := []string{"--master", master, "--class", "GoCaffeRunner",
		"--conf", "spark.executor.extraJavaOptions=-Djava.io.tmpdir=" + e.tmp,
		"--conf", "spark.ui.enabled=false",
		"--driver-memory", "768m"}
	full = append(full, sparkArgs...)
	full = append(full, e.jar)
	full = append(full, args...)
	r := e.run(t, timeout, "spark-submit", full, nil)
	t.Logf("spark-submit %s %v: exit %d in %v", master, args, r.code, r.took.Round(time.Second))
	return r
}

// run runs one of Spark's bin/ tools in its own process group (killed
// whole on timeout, which fails the test as a hang) and collects its output.
func (e sparkEnv) run(t *testing.T, timeout time.Duration, tool string, args []string, stdin io.Reader) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.sparkHome, "bin", tool), args...)
	cmd.Env = e.environ()
	cmd.Dir = e.tmp
	cmd.Stdin = stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, both bytes.Buffer
	cmd.Stdout = &multiWriter{&stdout, &both}
	cmd.Stderr = &both
	start := time.Now()
	err := cmd.Run()
	r := result{out: stdout.String(), combined: both.String(), took: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within %v (hang); output tail:\n%s", tool, args, timeout, tail(r.combined, 60))
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return r
}

type multiWriter struct{ a, b *bytes.Buffer }

func (m *multiWriter) Write(p []byte) (int, error) {
	m.a.Write(p)
	return m.b.Write(p)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var (
	reportRe = regexp.MustCompile(`(?m)^executor (\S+) host (\S+): goexec (\S+) pid (\d+) \((\S+) (\S+), goexec starts in this executor: (\d+)\) devices: cpu (\d+) logical cores \((\d+) usable\).*; gpus (.+)$`)
	appRe    = regexp.MustCompile(`(?m)^selftest: application (\S+) on `)
)

type report struct {
	executor, host, version string
	pid, starts, cores      int
}

func parseReports(t *testing.T, out string) []report {
	t.Helper()
	var rs []report
	for _, m := range reportRe.FindAllStringSubmatch(out, -1) {
		pid, _ := strconv.Atoi(m[4])
		starts, _ := strconv.Atoi(m[7])
		cores, _ := strconv.Atoi(m[8])
		rs = append(rs, report{executor: m[1], host: m[2], version: m[3], pid: pid, starts: starts, cores: cores})
	}
	return rs
}

// checkReports: one line per executor, distinct executors and goexec pids,
// each goexec started exactly once.
func checkReports(t *testing.T, r result, want int) []report {
	t.Helper()
	rs := parseReports(t, r.out)
	if len(rs) != want {
		t.Fatalf("got %d executor lines, want %d; stdout:\n%s\noutput tail:\n%s", len(rs), want, r.out, tail(r.combined, 40))
	}
	execs := map[string]bool{}
	pids := map[int]bool{}
	for _, x := range rs {
		if execs[x.executor] {
			t.Errorf("executor %s reported twice", x.executor)
		}
		execs[x.executor] = true
		if pids[x.pid] {
			t.Errorf("goexec pid %d reported by two executors", x.pid)
		}
		pids[x.pid] = true
		if x.starts != 1 {
			t.Errorf("executor %s started goexec %d times, want 1", x.executor, x.starts)
		}
		if x.cores < 1 || x.version == "" {
			t.Errorf("executor %s: implausible report %+v", x.executor, x)
		}
	}
	return rs
}

// goexecProcesses lists live processes whose command line runs a goexec
// binary from one of GoCaffe's work directories under any of the dirs.
func goexecProcesses(t *testing.T, dirs ...string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(data) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if filepath.Base(argv[0]) != "goexec" || !strings.Contains(argv[0], "gocaffe-goexec-") {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] == "Z" {
				continue // exited, waiting to be reaped
			}
		}
		for _, d := range dirs {
			// An executor's goexec runs from its working directory, which the
			// kernel reports with symbolic links resolved.
			real, err := filepath.EvalSymlinks(d)
			if err != nil {
				real = d
			}
			if strings.HasPrefix(argv[0], d) || strings.HasPrefix(argv[0], real) {
				found = append(found, e.Name()+" "+strings.Join(argv, " "))
				break
			}
		}
	}
	return found
}

// leftovers lists GoCaffe work directories under the given roots.
func leftovers(t *testing.T, roots ...string) []string {
	t.Helper()
	var found []string
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && strings.HasPrefix(d.Name(), "gocaffe-goexec-") {
				found = append(found, p)
				return filepath.SkipDir
			}
			return nil
		})
	}
	return found
}

// checkClean: no goexec from this application runs and no work dir is left.
func checkClean(t *testing.T, roots ...string) {
	t.Helper()
	if ps := goexecProcesses(t, roots...); len(ps) > 0 {
		t.Errorf("goexec processes left after the application ended:\n%s", strings.Join(ps, "\n"))
	}
	if ds := leftovers(t, roots...); len(ds) > 0 {
		t.Errorf("GoCaffe work directories left after the application ended: %v", ds)
	}
}

func pidAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func appWorkDir(t *testing.T, r result, workRoot string) string {
	t.Helper()
	m := appRe.FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("no 'selftest: application' line in stdout:\n%s", r.out)
	}
	return filepath.Join(workRoot, m[1])
}

func TestRunnerHelpVersionAndBadInput(t *testing.T) {
	e := setup(t)
	run := func(args ...string) (string, int) {
		cp := e.jar + ":" + filepath.Join(e.sparkHome, "jars", "*")
		cmd := exec.Command("java", append([]string{"-cp", cp, "GoCaffeRunner"}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("java GoCaffeRunner %v: %v", args, err)
		}
		return string(out), code
	}

	help, code := run("--help")
	if code != 0 {
		t.Errorf("--help exit %d", code)
	}
	for _, opt := range []string{"-train", "-test", "-features", "-conf", "-model", "-weights", "-snapshot",
		"-output", "-outputFormat", "-label", "-devices", "-clusterSize", "-connection", "-persistent",
		"-resize", "-lmdb_partitions", "-selftest"} {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(opt) + `\b`).MatchString(help) {
			t.Errorf("--help does not list %s", opt)
		}
	}
	if !strings.Contains(help, "[not implemented yet]") {
		t.Error("--help does not mark unimplemented options")
	}

	ver, code := run("--version")
	if code != 0 || !regexp.MustCompile(`^GoCaffe \S+ \(goexec \S+ linux/amd64; built against Spark 4\.`).MatchString(ver) {
		t.Errorf("--version: exit %d, %q", code, ver)
	}

	bad, code := run("-devices", "two", "-clusterSize", "0", "-outputFormat", "xml", "-bogus", "-train")
	if code != 2 {
		t.Errorf("bad options: exit %d, want 2; output:\n%s", code, bad)
	}
	for _, want := range []string{"4 problems", "-devices 'two': not an integer", "-clusterSize 0: must be at least 1",
		"-outputFormat 'xml': must be one of json, parquet", "unknown option '-bogus'"} {
		if !strings.Contains(bad, want) {
			t.Errorf("bad options output lacks %q:\n%s", want, bad)
		}
	}
	if strings.Contains(bad, "Exception") {
		t.Errorf("bad options printed a stack trace:\n%s", bad)
	}

	contra, code := run("-train", "-test", "--selftest", "-snapshot", "a.solverstate", "-weights", "b.caffemodel")
	if code != 2 {
		t.Errorf("contradictory options: exit %d, want 2", code)
	}
	for _, want := range []string{"cannot be combined", "needs -conf", "-snapshot and -weights are contradictory"} {
		if !strings.Contains(contra, want) {
			t.Errorf("contradictory options output lacks %q:\n%s", want, contra)
		}
	}

	// An option accepted but not implemented yet: exit 3, saying so.
	ni, code := run("-features", "ip1", "-conf", "lenet_solver.prototxt", "-model", "lenet.caffemodel", "-vocabDir", "v")
	if code != 3 || !strings.Contains(ni, "not implemented yet") || !strings.Contains(ni, "-vocabDir") {
		t.Errorf("-vocabDir: exit %d, want 3 with 'not implemented yet'; output:\n%s", code, ni)
	}
	out, code := run("-train", "-conf", "s.prototxt", "-output", "o")
	if code != 2 || !strings.Contains(out, "-output needs -features or -test") {
		t.Errorf("-output with -train: exit %d, want 2; output:\n%s", code, out)
	}
}

func TestSelftestLocalCluster(t *testing.T) {
	e := setup(t)
	r := e.submit(t, 6*time.Minute, "local-cluster[2,1,1024]",
		[]string{"--conf", "spark.executor.memory=1024m"}, "--selftest", "-clusterSize", "2")
	if r.code != 0 {
		t.Fatalf("selftest exit %d; output tail:\n%s", r.code, tail(r.combined, 60))
	}
	rs := checkReports(t, r, 2)
	for _, x := range rs {
		if pidAlive(x.pid) {
			t.Errorf("goexec pid %d (executor %s) still alive after the application ended", x.pid, x.executor)
		}
	}
	app := appWorkDir(t, r, filepath.Join(e.sparkHome, "work"))
	if _, err := os.Stat(app); err != nil {
		t.Errorf("application work dir: %v", err)
	}
	checkClean(t, app, e.tmp)
}

// TestSelftestDefaultMaster is the plain command: no --master, so
// Spark's local mode, where the driver is the one executor.
func TestSelftestDefaultMaster(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.sparkHome, "bin", "spark-submit"), "--class", "GoCaffeRunner",
		"--conf", "spark.ui.enabled=false", "--driver-java-options", "-Djava.io.tmpdir="+e.tmp, e.jar, "--selftest")
	cmd.Env = e.environ()
	cmd.Dir = e.tmp
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatal("spark-submit --selftest did not finish within 4 minutes")
	}
	if err != nil {
		t.Fatalf("spark-submit --selftest: %v; stdout:\n%s", err, out)
	}
	rs := checkReports(t, result{out: string(out)}, 1)
	if rs[0].executor != "driver" {
		t.Errorf("local mode executor = %q, want driver", rs[0].executor)
	}
	checkClean(t, e.tmp)
}

func TestKilledGoexecFailsNextTaskClearly(t *testing.T) {
	e := setup(t)
	r := e.submit(t, 6*time.Minute, "local-cluster[2,1,1024]",
		[]string{"--conf", "spark.executor.memory=1024m", "--conf", "spark.task.maxFailures=2",
			"--conf", "spark.stage.maxConsecutiveAttempts=2"},
		"--selftest-kill-goexec", "-clusterSize", "2")
	rs := checkReports(t, r, 2)
	if r.code == 0 {
		t.Fatalf("the task after the kill succeeded; output tail:\n%s", tail(r.combined, 60))
	}
	if !strings.Contains(r.out, "selftest: killed goexec") {
		t.Fatalf("the kill stage did not run; output tail:\n%s", tail(r.combined, 60))
	}
	died := regexp.MustCompile(`GoExecDiedException: goexec \(pid (\d+)\) on executor (\S+) \(host \S+\) died: exit status 137 \(killed by signal 9 SIGKILL\)\. .* goexec's last \d+ log lines:\n\s+\{.*"message":"goexec serving"\}`)
	m := died.FindStringSubmatch(r.combined)
	if m == nil {
		t.Fatalf("no clear GoExecDiedException naming the executor and goexec's last log lines; output tail:\n%s", tail(r.combined, 80))
	}
	known := false
	for _, x := range rs {
		if strconv.Itoa(x.pid) == m[1] && x.executor == m[2] {
			known = true
		}
	}
	if !known {
		t.Errorf("error names goexec pid %s on executor %s, which the selftest did not report (%+v)", m[1], m[2], rs)
	}
	if !strings.Contains(r.combined, "GoCaffeRunner: the Spark job failed") {
		t.Errorf("the runner did not report the failed job; output tail:\n%s", tail(r.combined, 30))
	}
	app := appWorkDir(t, r, filepath.Join(e.sparkHome, "work"))
	checkClean(t, app, e.tmp)
}

// daemon is a Spark master or worker started by the test.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// startDaemon runs spark-class main args in its own process group and waits
// (reading its output, no polling) until a line contains ready.
func startDaemon(t *testing.T, e sparkEnv, name, ready string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.sparkHome, "bin", "spark-class"), args...)
	cmd.Env = append(e.environ(), "SPARK_NO_DAEMONIZE=1")
	cmd.Dir = e.tmp
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	pw.Close()
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{})}
	// Stop it even if the test fails: SIGTERM to the group, then SIGKILL.
	t.Cleanup(func() { d.stop(t) })
	readyc := make(chan struct{})
	var log bytes.Buffer
	logc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		signalled := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), ready) {
				signalled = true
				close(readyc)
			}
		}
		pr.Close()
		logc <- log.String()
		close(d.done)
	}()
	select {
	case <-readyc:
		return d
	case <-d.done:
		t.Fatalf("%s exited before it was ready:\n%s", name, tail(<-logc, 40))
	case <-time.After(3 * time.Minute):
		t.Fatalf("%s not ready within 3 minutes", name)
	}
	return d
}

func (d *daemon) stop(t *testing.T) {
	pid := d.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Logf("%s ignored SIGTERM; killing its process group", d.name)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-d.done
	}
	_ = d.cmd.Wait()
	_ = syscall.Kill(-pid, syscall.SIGKILL) // anything left in the group
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestSelftestStandaloneMasterTwoWorkers(t *testing.T) {
	e := setup(t)
	port := freePort(t)
	master := fmt.Sprintf("spark://127.0.0.1:%d", port)
	startDaemon(t, e, "master", "I have been elected leader",
		"org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--webui-port", strconv.Itoa(freePort(t)))
	var workDirs []string
	for i := 1; i <= 2; i++ {
		wd := filepath.Join(e.tmp, fmt.Sprintf("worker%d", i))
		workDirs = append(workDirs, wd)
		startDaemon(t, e, fmt.Sprintf("worker%d", i), "Successfully registered with master",
			"org.apache.spark.deploy.worker.Worker", master, "--host", "127.0.0.1", "--cores", "1",
			"--memory", "1g", "--work-dir", wd, "--webui-port", strconv.Itoa(freePort(t)))
	}
	r := e.submit(t, 6*time.Minute, master,
		[]string{"--executor-memory", "1g", "--executor-cores", "1", "--total-executor-cores", "2"},
		"--selftest", "-clusterSize", "2")
	if r.code != 0 {
		t.Fatalf("selftest exit %d; output tail:\n%s", r.code, tail(r.combined, 60))
	}
	rs := checkReports(t, r, 2)
	for _, x := range rs {
		if pidAlive(x.pid) {
			t.Errorf("goexec pid %d (executor %s) still alive after the application ended", x.pid, x.executor)
		}
	}
	// Each worker ran one of the executors, in its own work dir.
	for _, wd := range workDirs {
		apps, _ := filepath.Glob(filepath.Join(wd, "app-*", "*"))
		if len(apps) != 1 {
			t.Errorf("worker dir %s holds executor dirs %v, want exactly 1", wd, apps)
		}
	}
	checkClean(t, append(workDirs, e.tmp)...)
}
