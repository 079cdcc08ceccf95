//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// GoCaffe on YARN (issue 15): spark-submit --master yarn against a
// MiniYARNCluster (a ResourceManager and 2 NodeManagers) and a
// MiniDFSCluster started on this machine by integration/minicluster
// (built by `gradle miniCluster`). The cluster is started once per test
// binary, by the first YARN test, and stopped by TestMain.
//
// Each NodeManager offers yarnNMMemoryMB to containers. An executor
// container is 512 MiB of heap + spark.executor.memoryOverhead (512 MiB for
// goexec + 384 MiB for the JVM, which GoCaffe sets) = 1408 MiB, the
// application master 512 + 384 = 896 MiB: one NodeManager holds the AM and
// one executor, the other one executor, so YARN grants at most 2 executors
// (in cluster mode the AM holds the driver: 512 + 512 MiB, the same fit).
const (
	yarnNMMemoryMB = 2560
	// yarnIterations is the CI run's length (GOCAFFE_YARN_ITERATIONS
	// overrides it for the full 10,000-iteration run).
	yarnIterations = 300
	// yarnAccuracy is the bar after yarnIterations on 2 ranks (global batch
	// 128); the full run's bar is the 99 %.
	yarnAccuracy = 0.95
)

// yarnCluster is the running mini cluster.
type yarnCluster struct {
	dir      string // the launcher's working directory: every YARN and HDFS file
	conf     string // HADOOP_CONF_DIR
	webapp   string // ResourceManager web address (REST API)
	fs       string // hdfs://host:port
	webhdfs  string // NameNode HTTP address (WebHDFS)
	nmLogs   []string
	javaHome string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	done     chan struct{}
	started  time.Time
}

var yarnFixture struct {
	once sync.Once
	c    *yarnCluster
	err  error
}

// TestMain stops the YARN cluster (if a test started it) after every test.
func TestMain(m *testing.M) {
	code := m.Run()
	if c := yarnFixture.c; c != nil {
		c.stop()
	}
	os.Exit(code)
}

// yarn returns the shared cluster, starting it on first use, and points the
// Spark processes of e at it.
func yarn(t *testing.T, e *sparkEnv) *yarnCluster {
	t.Helper()
	yarnFixture.once.Do(func() { yarnFixture.c, yarnFixture.err = startYarn(e.root) })
	if yarnFixture.err != nil {
		t.Fatalf("YARN mini cluster: %v", yarnFixture.err)
	}
	c := yarnFixture.c
	e.env = append(e.env, "HADOOP_CONF_DIR="+c.conf, "YARN_CONF_DIR="+c.conf, "JAVA_HOME="+c.javaHome)
	return c
}

func javaHome() (string, error) {
	if h := os.Getenv("JAVA_HOME"); h != "" {
		return h, nil
	}
	j, err := exec.LookPath("java")
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(j)
	if err != nil {
		return "", err
	}
	return filepath.Dir(filepath.Dir(real)), nil
}

func startYarn(root string) (*yarnCluster, error) {
	cpFile := filepath.Join(root, "build", "minicluster", "classpath")
	cp, err := os.ReadFile(cpFile)
	if err != nil {
		return nil, fmt.Errorf("%v (build the launcher with `gradle miniCluster`; `make integration` does)", err)
	}
	jh, err := javaHome()
	if err != nil {
		return nil, fmt.Errorf("JAVA_HOME unset and no java found: %v", err)
	}
	dir, err := os.MkdirTemp("", "gocaffe-yarn-")
	if err != nil {
		return nil, err
	}
	c := &yarnCluster{dir: dir, conf: filepath.Join(dir, "conf"), javaHome: jh, done: make(chan struct{}), started: time.Now()}
	c.cmd = exec.Command(filepath.Join(jh, "bin", "java"), "-Xmx1g", "-cp", strings.TrimSpace(string(cp)),
		"GoCaffeMiniCluster", "--conf-dir", c.conf, "--nodemanagers", "2",
		"--nm-memory-mb", strconv.Itoa(yarnNMMemoryMB), "--nm-vcores", "2")
	c.cmd.Dir = dir
	c.cmd.Env = append(os.Environ(), "JAVA_HOME="+jh)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The launcher runs until its standard input closes: when this process
	// ends, however it ends, so does the cluster.
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "minicluster.log"))
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the launcher: %v", err)
	}
	pw.Close()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if strings.HasPrefix(sc.Text(), "GOCAFFE-MINICLUSTER READY ") {
				ready <- sc.Text()
			}
		}
		logf.Close()
		_ = c.cmd.Wait()
		close(c.done)
	}()
	fail := func(why string) (*yarnCluster, error) {
		c.stop()
		log, _ := os.ReadFile(filepath.Join(dir, "minicluster.log"))
		return nil, fmt.Errorf("%s; launcher output tail:\n%s", why, tail(string(log), 40))
	}
	select {
	case line := <-ready:
		for _, f := range strings.Fields(line)[2:] {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "webapp":
				c.webapp = v
			case "fs":
				c.fs = v
			case "webhdfs":
				c.webhdfs = v
			case "nmlogs":
				c.nmLogs = strings.Split(v, ",")
			}
		}
		if c.webapp == "" || c.fs == "" || c.webhdfs == "" || len(c.nmLogs) != 2 {
			return fail("READY line lacks addresses: " + line)
		}
		fmt.Printf("YARN mini cluster up in %v: %s\n", time.Since(c.started).Round(time.Second), line)
		return c, nil
	case <-c.done:
		return fail("the launcher exited before the cluster was ready")
	case <-time.After(4 * time.Minute):
		return fail("the cluster was not ready within 4 minutes")
	}
}

// stop closes the launcher's standard input (it stops YARN and HDFS), kills
// its process group if it has not exited within a minute, and removes its
// directory.
func (c *yarnCluster) stop() {
	_ = c.stdin.Close()
	pid := c.cmd.Process.Pid
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		fmt.Println("YARN mini cluster did not stop within a minute; killing it")
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-c.done
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // anything left in its group
	fmt.Printf("YARN mini cluster stopped after %v\n", time.Since(c.started).Round(time.Second))
	_ = os.RemoveAll(c.dir)
}

// sparkArgs are spark-submit's YARN options, as CaffeOnSpark's YARN
// instructions give them, for 2 executors of 1 core; files go with --files.
func (c *yarnCluster) sparkArgs(e sparkEnv, deployMode string, executors int, files ...string) []string {
	args := []string{"--deploy-mode", deployMode,
		"--num-executors", strconv.Itoa(executors), "--executor-cores", "1", "--executor-memory", "512m",
		// Spark's jars are on every node (this machine): no upload.
		"--conf", "spark.yarn.jars=local:" + filepath.Join(e.sparkHome, "jars") + "/*",
		"--conf", "spark.yarn.am.memory=512m",
		"--conf", "spark.yarn.maxAppAttempts=1",
		"--conf", "spark.gocaffe.goexec.memoryLimit=512m"}
	if deployMode == "cluster" {
		// The AM container holds the driver: 512 MiB of heap + 512 MiB.
		args = append(args, "--driver-memory", "512m", "--conf", "spark.driver.memoryOverhead=512m")
	}
	if len(files) > 0 {
		args = append(args, "--files", strings.Join(files, ","))
	}
	return args
}

// ---- the ResourceManager's REST API ----

func (c *yarnCluster) rest(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + c.webapp + "/ws/v1/cluster" + path)
	if err != nil {
		t.Fatalf("RM REST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("RM REST %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("RM REST %s: %v: %s", path, err, body)
	}
}

type yarnApp struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	FinalStatus string `json:"finalStatus"`
	Diagnostics string `json:"diagnostics"`
}

func (c *yarnCluster) apps(t *testing.T) []yarnApp {
	var r struct {
		Apps *struct {
			App []yarnApp `json:"app"`
		} `json:"apps"`
	}
	c.rest(t, "/apps", &r)
	if r.Apps == nil {
		return nil
	}
	return r.Apps.App
}

// checkReleased: the application has ended (with finalStatus want, unless
// want is empty) and YARN holds no container any more (every test runs alone
// on the cluster).
func (c *yarnCluster) checkReleased(t *testing.T, app, want string) {
	t.Helper()
	var a struct {
		App yarnApp `json:"app"`
	}
	var m struct {
		Metrics struct {
			ContainersAllocated int `json:"containersAllocated"`
			AllocatedMB         int `json:"allocatedMB"`
			AppsRunning         int `json:"appsRunning"`
		} `json:"clusterMetrics"`
	}
	deadline := time.Now().Add(time.Minute)
	for {
		c.rest(t, "/apps/"+app, &a)
		c.rest(t, "/metrics", &m)
		ended := a.App.State == "FINISHED" || a.App.State == "FAILED" || a.App.State == "KILLED"
		if ended && m.Metrics.ContainersAllocated == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("a minute after spark-submit exited: application %s %s, cluster still holds %d containers (%d MB)",
				app, a.App.State, m.Metrics.ContainersAllocated, m.Metrics.AllocatedMB)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("application %s: %s/%s; every container released", app, a.App.State, a.App.FinalStatus)
	if want != "" && a.App.FinalStatus != want {
		t.Errorf("application %s final status %s, want %s (diagnostics: %s)", app, a.App.FinalStatus, want, a.App.Diagnostics)
	}
}

// ---- HDFS through WebHDFS ----

func (c *yarnCluster) webHDFS(t *testing.T, method, path, op string, body []byte) []byte {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"op": {op}, "user.name": {u.Username}}
	if op == "CREATE" {
		q.Set("overwrite", "true")
	}
	req, err := http.NewRequest(method, "http://"+c.webhdfs+"/webhdfs/v1"+path+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// CREATE answers with a redirect to a DataNode; the client follows it
	// with the body again.
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("WebHDFS %s %s: %v", op, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("WebHDFS %s %s: %s: %s", op, path, resp.Status, out)
	}
	return out
}

// hdfsPut copies a local file or directory tree to path on HDFS.
func (c *yarnCluster) hdfsPut(t *testing.T, local, path string) {
	t.Helper()
	err := filepath.WalkDir(local, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(local, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		c.webHDFS(t, http.MethodPut, filepath.ToSlash(filepath.Join(path, rel)), "CREATE", data)
		return nil
	})
	if err != nil {
		t.Fatalf("copy %s to HDFS %s: %v", local, path, err)
	}
}

// hdfsSize is the length of a file on HDFS, -1 if it does not exist.
func (c *yarnCluster) hdfsSize(t *testing.T, path string) int64 {
	t.Helper()
	u, _ := user.Current()
	resp, err := http.Get("http://" + c.webhdfs + "/webhdfs/v1" + path + "?op=GETFILESTATUS&user.name=" + u.Username)
	if err != nil {
		t.Fatalf("WebHDFS GETFILESTATUS %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return -1
	}
	var st struct {
		FileStatus struct {
			Length int64  `json:"length"`
			Type   string `json:"type"`
		} `json:"FileStatus"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("WebHDFS GETFILESTATUS %s: %v", path, err)
	}
	return st.FileStatus.Length
}

// ---- container logs and processes ----

// containerLogs returns the NodeManagers' log files named name of app's
// containers, by container id (the first container is the AM).
func (c *yarnCluster) containerLogs(t *testing.T, app, name string) map[string]string {
	t.Helper()
	logs := map[string]string{}
	for _, d := range c.nmLogs {
		files, _ := filepath.Glob(filepath.Join(d, app, "container_*", name))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Errorf("container log %s: %v", f, err)
				continue
			}
			logs[filepath.Base(filepath.Dir(f))] = string(data)
		}
	}
	return logs
}

// checkGoexecInContainers (called mid-run): every goexec of app runs from a
// directory inside its YARN container's working directory, with no
// LD_LIBRARY_PATH in its environment; returns how many there are.
func (c *yarnCluster) checkGoexecInContainers(t *testing.T, app string) int {
	ps := goexecProcesses(t, c.dir)
	inApp := regexp.MustCompile(`/usercache/[^/]+/appcache/` + regexp.QuoteMeta(app) + `/container_[0-9_e]+/gocaffe-goexec-[^/]+/goexec$`)
	n := 0
	for _, p := range ps {
		f := strings.Fields(p)
		pid, argv0 := f[0], f[1]
		if !inApp.MatchString(argv0) {
			continue
		}
		n++
		env, err := os.ReadFile("/proc/" + pid + "/environ")
		if err != nil {
			continue // exited meanwhile
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
				t.Errorf("goexec pid %s runs with %s", pid, kv)
			}
		}
	}
	if n == 0 {
		t.Errorf("no goexec of %s runs from a YARN container's working directory; goexec processes: %v", app, ps)
	}
	return n
}

// checkGoexecLogs: goexec's log lines are in the stderr of app's executor
// containers, where `yarn logs -applicationId` shows them.
func (c *yarnCluster) checkGoexecLogs(t *testing.T, app string, executors int) {
	t.Helper()
	n := 0
	for id, log := range c.containerLogs(t, app, "stderr") {
		if strings.Contains(log, `"message":"goexec serving"`) {
			n++
			t.Logf("goexec's log lines in container %s's stderr", id)
		}
	}
	if n < executors {
		t.Errorf("goexec's log lines in %d executor containers' stderr under %v, want %d", n, c.nmLogs, executors)
	}
}

// checkNoGoexec: no goexec of any application runs and no goexec work
// directory is left anywhere in the cluster's directories.
func (c *yarnCluster) checkNoGoexec(t *testing.T) {
	t.Helper()
	if ps := awaitGone(t, 30*time.Second, c.dir); len(ps) > 0 {
		t.Errorf("goexec processes left 30 s after the application ended:\n%s", strings.Join(ps, "\n"))
	}
	checkClean(t, c.dir)
}

var yarnAppRe = regexp.MustCompile(`application_\d+_\d+`)

// yarnLenet writes LeNet's solver and net (lenetFiles) with the data
// sources at prefix+dir (file: for the local disk, an hdfs:// URI), and
// returns the solver and net paths and the local MNIST directory.
func yarnLenet(t *testing.T, e sparkEnv, iters, snapshot int, prefix string) (solver, net, mnist string) {
	t.Helper()
	solver = lenetFiles(t, e, iters, iters, snapshot)
	net = filepath.Join(filepath.Dir(solver), "lenet_train_test.prototxt")
	mnist = filepath.Join(e.tmp, "mnist")
	text, err := os.ReadFile(net)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(text), `{ source: "parquet:`+mnist, `{ source: "parquet:`+prefix)
	if strings.Count(s, `{ source: "parquet:`+prefix) != 2 {
		t.Fatalf("%s: data sources not under %s:\n%s", net, mnist, text)
	}
	if err := os.WriteFile(net, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return solver, net, mnist
}

func yarnIters(t *testing.T) (int, float64) {
	if v := os.Getenv("GOCAFFE_YARN_ITERATIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("GOCAFFE_YARN_ITERATIONS=%q: want an integer >= 100", v)
		}
		if n >= 10000 {
			return n, 0.99
		}
		return n, yarnAccuracy
	}
	return yarnIterations, yarnAccuracy
}

// yarnTrainTimeout is how long a training submit may take before the test
// calls it a hang: 10 minutes for the CI's few hundred iterations, and 150 ms
// more per iteration for longer runs (GOCAFFE_YARN_ITERATIONS=10000 trains
// at 30–90 ms per iteration here, depending on the machine's load).
func yarnTrainTimeout(iters int) time.Duration {
	return 10*time.Minute + time.Duration(iters)*150*time.Millisecond
}

// TestYarnClientMode: LeNet trains on 2 YARN executors with the driver in
// spark-submit (--deploy-mode client), CaffeOnSpark's command line
// (--num-executors, --executor-cores, --files, -clusterSize, -devices,
// -connection ethernet, -features, -label, -output); goexec runs from the
// containers' working directories and logs into their logs; every container
// is released at the end.
func TestYarnClientMode(t *testing.T) {
	start := time.Now()
	defer func() { t.Logf("TestYarnClientMode took %v", time.Since(start).Round(time.Second)) }()
	e := setup(t)
	c := yarn(t, &e)
	iters, bar := yarnIters(t)
	solver, net, _ := yarnLenet(t, e, iters, 0, "file:"+e.tmp+"/mnist")
	model := "file:" + filepath.Join(e.tmp, "model", "lenet.caffemodel")
	features := "file:" + filepath.Join(e.tmp, "features")
	var app string
	seen := 0
	watch := func(line string) {
		if m := trainAppRe.FindStringSubmatch(line); m != nil {
			app = m[1]
		}
		if seen == 0 && app != "" && strings.HasPrefix(line, "GoCaffe: iteration 100/") {
			seen = c.checkGoexecInContainers(t, app)
		}
	}
	r := e.submitWatching(t, yarnTrainTimeout(iters), "yarn", c.sparkArgs(e, "client", 2, solver, net), watch,
		"-train", "-conf", solver, "-model", model, "-clusterSize", "2", "-devices", "1", "-connection", "ethernet",
		"-features", "ip1,ip2", "-label", "label", "-output", features, "-outputFormat", "json")
	o := parseTraining(t, r, iters)
	t.Logf("YARN client mode: test accuracy %.4f after %d iterations (%v)", o.accuracy, iters, r.took.Round(time.Second))
	if o.accuracy < bar {
		t.Errorf("test accuracy %.4f after %d iterations, want >= %.2f", o.accuracy, iters, bar)
	}
	checkOneRankPerExecutor(t, o, 2)
	if seen != 2 {
		t.Errorf("%d goexec processes in the application's containers mid-training, want 2", seen)
	}
	if !strings.Contains(r.out, "GoCaffe: features of 10000 samples written to") {
		t.Errorf("no 'features of 10000 samples written' line; stdout:\n%s", r.out)
	}
	if parts, _ := os.ReadDir(filepath.Join(e.tmp, "features")); len(parts) == 0 {
		t.Errorf("no feature files under %s", filepath.Join(e.tmp, "features"))
	}
	if !strings.Contains(r.out, "GoCaffe: spark.executor.memoryOverhead set to 896m: 512m for goexec") {
		t.Errorf("GoCaffe did not say how it sized spark.executor.memoryOverhead; stdout:\n%s", r.out)
	}
	c.checkReleased(t, o.app, "SUCCEEDED")
	c.checkGoexecLogs(t, o.app, 2)
	c.checkNoGoexec(t)
	checkClean(t, e.tmp)
}

// TestYarnClusterModeHDFS: the driver runs in YARN's application master
// (--deploy-mode cluster) with the solver and net shipped by --files and
// named relatively, as CaffeOnSpark's instructions do; the data, the model
// and the snapshots are on HDFS. Then -test reads the solver, the net, the
// data and the model from HDFS and writes its result there.
func TestYarnClusterModeHDFS(t *testing.T) {
	start := time.Now()
	defer func() { t.Logf("TestYarnClusterModeHDFS took %v", time.Since(start).Round(time.Second)) }()
	e := setup(t)
	c := yarn(t, &e)
	iters, bar := yarnIters(t)
	root := "/gocaffe-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	snap := iters / 2
	solver, net, mnist := yarnLenet(t, e, iters, snap, c.fs+root+"/mnist")
	c.hdfsPut(t, mnist, root+"/mnist")
	model := c.fs + root + "/model/lenet.caffemodel"
	r := e.submitWatching(t, yarnTrainTimeout(iters), "yarn", c.sparkArgs(e, "cluster", 2, solver, net), nil,
		"-train", "-conf", filepath.Base(solver), "-model", model, "-clusterSize", "2", "-devices", "1",
		"-connection", "ethernet")
	m := yarnAppRe.FindString(r.combined)
	if m == "" {
		t.Fatalf("spark-submit named no YARN application; output tail:\n%s", tail(r.combined, 60))
	}
	// The driver's output is the AM container's stdout (its first container).
	var driverOut string
	for id, s := range c.containerLogs(t, m, "stdout") {
		if strings.HasSuffix(id, "_000001") {
			driverOut = s
		}
	}
	if r.code != 0 {
		am := c.containerLogs(t, m, "stderr")
		var amErr string
		for id, s := range am {
			if strings.HasSuffix(id, "_000001") {
				amErr = s
			}
		}
		t.Fatalf("cluster mode exit %d; driver stdout:\n%s\ndriver stderr tail:\n%s\nspark-submit tail:\n%s",
			r.code, driverOut, tail(amErr, 60), tail(r.combined, 30))
	}
	d := doneRe.FindStringSubmatch(driverOut)
	if d == nil || d[1] != strconv.Itoa(iters) || !strings.HasSuffix(d[2], root+"/model/lenet.caffemodel") {
		t.Fatalf("no 'training done at iteration %d ... model %s' line in the driver's stdout:\n%s", iters, model, driverOut)
	}
	a := finalTestRe.FindStringSubmatch(driverOut)
	if a == nil {
		t.Fatalf("no final test in the driver's stdout:\n%s", driverOut)
	}
	acc, _ := strconv.ParseFloat(a[1], 64)
	t.Logf("YARN cluster mode, HDFS: test accuracy %.4f after %d iterations (%v)", acc, iters, r.took.Round(time.Second))
	if acc < bar {
		t.Errorf("test accuracy %.4f after %d iterations, want >= %.2f", acc, iters, bar)
	}
	for _, f := range []string{"lenet.caffemodel", "lenet.solverstate",
		fmt.Sprintf("lenet_iter_%d.caffemodel", snap), fmt.Sprintf("lenet_iter_%d.solverstate", snap)} {
		if n := c.hdfsSize(t, root+"/model/"+f); n <= 0 {
			t.Errorf("HDFS %s/model/%s: size %d, want a written file", root, f, n)
		}
	}
	c.checkReleased(t, m, "SUCCEEDED")
	c.checkGoexecLogs(t, m, 2)

	// -test with everything on HDFS: solver, net (beside the solver), data,
	// model and the result.
	c.hdfsPut(t, filepath.Dir(solver), root+"/lenet")
	res := c.fs + root + "/test-result"
	r = e.submitWatching(t, 6*time.Minute, "yarn", c.sparkArgs(e, "client", 2), nil,
		"-test", "-conf", c.fs+root+"/lenet/lenet_solver.prototxt", "-model", model, "-clusterSize", "2",
		"-output", res)
	if r.code != 0 {
		t.Fatalf("-test on HDFS: exit %d; output tail:\n%s", r.code, tail(r.combined, 60))
	}
	tm := regexp.MustCompile(`(?m)^GoCaffe: test at iteration 0: .*\baccuracy = ([0-9.]+)`).FindStringSubmatch(r.out)
	if tm == nil {
		t.Fatalf("-test printed no accuracy; stdout:\n%s", r.out)
	}
	if tm[1] != fmt.Sprintf("%.4f", acc) {
		t.Errorf("-test of the trained model: accuracy %s, the training's final test %.4f", tm[1], acc)
	}
	if !regexp.MustCompile(`(?m)^GoCaffe: test result written to \S*` + regexp.QuoteMeta(root+"/test-result")).MatchString(r.out) {
		t.Errorf("no 'test result written to %s' line; stdout:\n%s", res, r.out)
	}
	if n := c.hdfsSize(t, root+"/test-result"); n <= 0 {
		t.Errorf("HDFS %s/test-result: size %d, want the test result", root, n)
	}
	c.checkReleased(t, yarnAppRe.FindString(r.combined), "SUCCEEDED")
	c.checkNoGoexec(t)
	checkClean(t, e.tmp)
}

// TestYarnTooFewContainers: -clusterSize 3 where YARN can grant only 2
// executor containers. GoCaffe waits spark.gocaffe.barrier.slotWaitTimeout,
// then fails with one message: how many executors it has, how many it
// needs, which setting to change. Nothing hangs, no goexec is left and YARN
// gets every container back.
func TestYarnTooFewContainers(t *testing.T) {
	start := time.Now()
	defer func() { t.Logf("TestYarnTooFewContainers took %v", time.Since(start).Round(time.Second)) }()
	e := setup(t)
	c := yarn(t, &e)
	solver, net, _ := yarnLenet(t, e, 100, 0, "file:"+e.tmp+"/mnist")
	args := append(c.sparkArgs(e, "client", 3, solver, net), "--conf", "spark.gocaffe.barrier.slotWaitTimeout=20s")
	r := e.submitWatching(t, 5*time.Minute, "yarn", args, nil,
		"-train", "-conf", solver, "-model", "file:"+filepath.Join(e.tmp, "model", "lenet.caffemodel"),
		"-clusterSize", "3", "-connection", "ethernet")
	for _, l := range strings.Split(r.combined, "\n") {
		if strings.HasPrefix(l, "GoCaffe") {
			t.Log(l)
		}
	}
	msg := driverMessage(t, r)
	for _, want := range []string{"GoCaffe needs 3 executors", "has 2 after waiting 20 s",
		"(spark.gocaffe.barrier.slotWaitTimeout)", "YARN granted 2 of the 3 executor containers", "lower -clusterSize to 2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("driver message lacks %q: %s", want, msg)
		}
	}
	if !strings.Contains(r.out, "GoCaffe: waiting up to 20 s (spark.gocaffe.barrier.slotWaitTimeout) for 3 executors") {
		t.Errorf("GoCaffe did not say what it waits for; stdout:\n%s", r.out)
	}
	if strings.Contains(r.out, "GoCaffe: iteration") {
		t.Error("training started with too few executors")
	}
	app := yarnAppRe.FindString(r.combined)
	// A client-mode application's final status is the launcher's, not the
	// driver's exit status: only its end and the containers count here.
	c.checkReleased(t, app, "")
	c.checkNoGoexec(t)
	checkClean(t, e.tmp)
}

// TestYarnOverheadTooSmall: a goexec memory limit the executor's
// spark.executor.memoryOverhead cannot hold fails up front with a clear
// message, before any YARN application starts (not as a container YARN
// kills later).
func TestYarnOverheadTooSmall(t *testing.T) {
	e := setup(t)
	c := yarn(t, &e)
	before := len(c.apps(t))
	args := append(c.sparkArgs(e, "client", 2), "--conf", "spark.gocaffe.goexec.memoryLimit=1g",
		"--conf", "spark.executor.memoryOverhead=512m")
	r := e.submit(t, 3*time.Minute, "yarn", args, "-train", "-conf", "file:/nonexistent/solver.prototxt", "-clusterSize", "2")
	msg := driverMessage(t, r)
	for _, want := range []string{"spark.executor.memoryOverhead 512m cannot hold goexec", "up to 1024m (spark.gocaffe.goexec.memoryLimit)",
		"off-heap 384m", "Set spark.executor.memoryOverhead to at least 1408m"} {
		if !strings.Contains(msg, want) {
			t.Errorf("driver message lacks %q: %s", want, msg)
		}
	}
	if r.code != 2 {
		t.Errorf("exit %d, want 2 (a settings problem)", r.code)
	}
	if after := len(c.apps(t)); after != before {
		t.Errorf("a YARN application started (%d applications, %d before)", after, before)
	}
}

// TestYarnLostContainer SIGKILLs one executor container's JVM mid-training
// (as the NodeManager does when it kills a container): YARN reports the
// container lost, Spark asks YARN for a replacement, the round is retried on
// it from the last round's weights, and training reaches the bar.
func TestYarnLostContainer(t *testing.T) {
	start := time.Now()
	defer func() { t.Logf("TestYarnLostContainer took %v", time.Since(start).Round(time.Second)) }()
	e := setup(t)
	c := yarn(t, &e)
	solver, net, _ := yarnLenet(t, e, yarnIterations, 0, "file:"+e.tmp+"/mnist")
	var app string
	var victim *executorJVM
	watch := func(line string) {
		if m := trainAppRe.FindStringSubmatch(line); m != nil {
			app = m[1]
		}
		if victim != nil || app == "" || !strings.HasPrefix(line, "GoCaffe: iteration 100/") {
			return
		}
		victim = &executorJVM{}
		execs := yarnExecutorJVMs(t, app)
		if len(execs) == 0 {
			return
		}
		v := execs[len(execs)-1]
		if err := syscall.Kill(v.pid, syscall.SIGKILL); err == nil {
			*victim = v
		}
	}
	args := append(c.sparkArgs(e, "client", 2, solver, net), "--conf", "spark.gocaffe.sync.peerTimeout=30s",
		"--conf", "spark.gocaffe.sync.roundIterations=50")
	r := e.submitWatching(t, 10*time.Minute, "yarn", args, watch,
		"-train", "-conf", solver, "-model", "file:"+filepath.Join(e.tmp, "model", "lenet.caffemodel"), "-clusterSize", "2")
	if victim == nil || victim.pid == 0 {
		t.Fatalf("the test killed no executor container; output tail:\n%s", tail(r.combined, 60))
	}
	t.Logf("killed executor %s (pid %d)", victim.id, victim.pid)
	o := parseTraining(t, r, yarnIterations)
	// The rank of the lost executor ran again on a new executor (a
	// replacement container), loading its partition into that executor's
	// goexec.
	reloaded := false
	for _, m := range regexp.MustCompile(`(?m)^GoCaffe: rank \d+ on executor (\S+) \(\S+\): partition of \d+ rows loaded into goexec$`).
		FindAllStringSubmatch(r.out, -1) {
		known := false
		for _, ex := range o.ranks {
			known = known || ex == m[1]
		}
		reloaded = reloaded || !known
	}
	if !reloaded {
		t.Errorf("no rank loaded its partition on a new executor after the kill; stdout:\n%s", r.out)
	}
	if o.accuracy < yarnAccuracy-0.01 {
		t.Errorf("test accuracy %.4f after the lost container, want >= %.2f", o.accuracy, yarnAccuracy-0.01)
	}
	c.checkReleased(t, o.app, "SUCCEEDED")
	c.checkNoGoexec(t)
	checkClean(t, e.tmp)
}

// yarnExecutorJVMs lists the live executor JVMs of YARN application app
// (YarnCoarseGrainedExecutorBackend, with --app-id app on the command line).
func yarnExecutorJVMs(t *testing.T, app string) []executorJVM {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []executorJVM
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || !pidAlive(pid) {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if !contains(argv, "org.apache.spark.executor.YarnCoarseGrainedExecutorBackend") || flag(argv, "--app-id") != app {
			continue
		}
		found = append(found, executorJVM{pid: pid, id: flag(argv, "--executor-id")})
	}
	return found
}
