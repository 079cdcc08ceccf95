package sparkconf

import (
	"fmt"
	"time"
)

// Key names, for code that reads them.
const (
	KeySyncMode           = "spark.gocaffe.sync.mode"
	KeyRoundIterations    = "spark.gocaffe.sync.roundIterations"
	KeyPeerTimeout        = "spark.gocaffe.sync.peerTimeout"
	KeyConnection         = "spark.gocaffe.connection"
	KeyListenAddress      = "spark.gocaffe.net.listenAddress"
	KeyListenPort         = "spark.gocaffe.net.port"
	KeyAuthSecret         = "spark.gocaffe.auth.secret"
	KeyRingEncrypt        = "spark.gocaffe.ring.encrypt"
	KeySlotWaitTimeout    = "spark.gocaffe.barrier.slotWaitTimeout"
	KeyGoexecLogLevel     = "spark.gocaffe.goexec.logLevel"
	KeyGoexecMemoryLimit  = "spark.gocaffe.goexec.memoryLimit"
	KeyGoexecThreads      = "spark.gocaffe.goexec.threads"
	KeyGoexecBinary       = "spark.gocaffe.goexec.binary"
	KeyGoexecStartTimeout = "spark.gocaffe.goexec.startTimeout"
	KeyGoexecStopTimeout  = "spark.gocaffe.goexec.stopTimeout"
	KeyGoexecLogTailLines = "spark.gocaffe.goexec.logTailLines"
	KeyCacheDir           = "spark.gocaffe.data.cacheDir"
	KeyPartitionPolicy    = "spark.gocaffe.data.partitionPolicy"
	KeyNonFinite          = "spark.gocaffe.nonFinite"
)

// minSecretLen is the shortest secret accepted when one is set by hand.
const minSecretLen = 16

// New returns the registry of every spark.gocaffe.* key. An error means a
// mistake in this package's declarations (its tests catch that).
func New() (*Registry, error) {
	r, err := NewRegistry(declarations()...)
	if err != nil {
		return nil, fmt.Errorf("sparkconf: bad declarations: %w", err)
	}
	return r, nil
}

func declarations() []Key {
	return []Key{
		{Name: KeySyncMode, Type: Enum, Default: "allreduce", Values: []string{"allreduce", "average"},
			Doc: "How ranks combine their work. `allreduce`: synchronous SGD, gradients averaged over all ranks every iteration " +
				"(CaffeOnSpark's semantics; existing solver settings converge as before). `average`: each rank trains a round " +
				"on its own partition, then the driver averages the weights (for slow networks)."},
		{Name: KeyRoundIterations, Type: Int, Default: "100", Min: 1, Max: 1 << 30,
			Doc: "Iterations per round (τ). Each round is one barrier stage and ends with the weights on the driver: the " +
				"restart point after a failure, and in `average` mode the averaging interval."},
		{Name: KeyPeerTimeout, Type: Duration, Default: "120s", Check: positiveDuration,
			Doc: "How long a rank waits for its peers (connecting, or one all-reduce step) before the task fails."},
		{Name: KeyConnection, Type: Enum, Default: "ethernet", Values: []string{"ethernet", "infiniband"},
			Doc: "Transport between ranks, as CaffeOnSpark's `-connection` (which overrides it). `infiniband` logs that " +
				"RDMA is not available and uses TCP."},
		{Name: KeyListenAddress, Type: Host, DefaultDoc: "the executor's own IP address",
			Doc: "Address goexec listens on for its peers. Nothing listens on all interfaces (0.0.0.0 or ::) unless set " +
				"here explicitly."},
		{Name: KeyListenPort, Type: Int, Default: "0", Min: 0, Max: 65535,
			Doc: "Port goexec listens on for its peers; 0 picks a free one."},
		{Name: KeyAuthSecret, Type: Secret, DefaultDoc: "a random 256-bit secret per application",
			Check: func(v any) error {
				if s := v.(string); s != "" && len(s) < minSecretLen {
					return fmt.Errorf("secret too short: %d characters, need at least %d", len(s), minSecretLen)
				}
				return nil
			},
			Doc: "Shared secret that authenticates every connection between ranks. When unset, the driver generates one " +
				"for each application and hands it to the tasks. The value is never logged or shown in errors; prefer " +
				"leaving it unset."},
		{Name: KeyRingEncrypt, Type: Bool, DefaultDoc: "the value of Spark's `spark.network.crypto.enabled`",
			Doc: "Encrypt the gradients and weights ranks exchange (`allreduce` mode) with AES-256-GCM, under keys derived " +
				"from the application's secret (see spark.gocaffe.auth.secret). Connections are authenticated either way. " +
				"Costs CPU per all-reduce: see BENCHMARKS.md."},
		{Name: KeySlotWaitTimeout, Type: Duration, Default: "120s", Check: positiveDuration,
			Doc: "How long training, testing and `--selftest` wait for `-clusterSize` executors (one per rank) before " +
				"failing with a message saying how many there are and how many are needed. Replaces Spark's own " +
				"barrier-slot wait; on YARN also Spark's wait for registered executors before the first job."},
		{Name: KeyGoexecLogLevel, Type: Enum, Default: "info", Values: []string{"trace", "debug", "info", "warn", "error"},
			Doc: "Log level of the goexec processes."},
		{Name: KeyGoexecMemoryLimit, Type: Bytes, Default: "0",
			Doc: "Soft memory limit of each goexec process (Go's `debug.SetMemoryLimit`, as GOMEMLIMIT); 0 means none. " +
				"goexec runs outside the JVM heap: count it in `spark.executor.memoryOverhead`. On YARN GoCaffe does: it sets " +
				"the overhead to this limit plus the JVM's own share when the overhead is unset, refuses an overhead too small " +
				"for it, gives goexec what a set overhead leaves when this is 0, and 1 GiB when neither is set."},
		{Name: KeyGoexecThreads, Type: Int, Default: "0", Min: 0, Max: 4096,
			Doc: "Threads goexec computes with (its GOMAXPROCS); 0 means Go's default, every core the process may use."},
		{Name: KeyGoexecBinary, Type: Path, DefaultDoc: "the binary carried in the jar",
			Doc: "Path of a linux/amd64 goexec binary on every executor, run instead of the one extracted from the jar " +
				"(the driver still checks settings with the jar's own)."},
		{Name: KeyGoexecStartTimeout, Type: Duration, Default: "60s", Check: positiveDuration,
			Doc: "How long an executor waits for a starting goexec to answer before the task fails."},
		{Name: KeyGoexecStopTimeout, Type: Duration, Default: "15s", Check: positiveDuration,
			Doc: "How long a stopping executor waits for goexec to exit after SIGTERM before killing it."},
		{Name: KeyGoexecLogTailLines, Type: Int, Default: "20", Min: 1, Max: 100000,
			Doc: "How many of goexec's last log lines the executor keeps, to quote when goexec dies."},
		{Name: KeyCacheDir, Type: Path, DefaultDoc: "the executor's working directory",
			Doc: "Directory on each executor (created if missing) in which goexec gets its work directory: its binary, " +
				"its socket and its temporary files (TMPDIR). The work directory is removed when goexec stops. Decoded " +
				"partitions stay cached in goexec's memory across rounds."},
		{Name: KeyPartitionPolicy, Type: Enum, Default: "uneven-epochs", Values: []string{"uneven-epochs", "with-replacement"},
			Doc: "How a rank walks its own partition; partitions are never truncated to the smallest. `uneven-epochs`: " +
				"every sample once per epoch, ranks with smaller partitions complete more epochs. `with-replacement`: " +
				"samples drawn uniformly at random."},
		{Name: KeyNonFinite, Type: Enum, Default: "stop", Values: []string{"stop", "warn"},
			Doc: "What training does when the loss or the gradient is NaN or infinite. `stop`: the run fails at once, " +
				"naming the iteration, the loss, the learning rate and the first layer whose output is not finite; " +
				"the weights and snapshots stay those of the last finite iteration, and weights or solver states " +
				"holding NaN or Inf are refused. `warn`: log a warning and train on, as Caffe does."},
	}
}

func positiveDuration(v any) error {
	if v.(time.Duration) < time.Millisecond {
		return fmt.Errorf("must be at least 1ms")
	}
	return nil
}

// Settings are GoCaffe's settings in typed form.
type Settings struct {
	SyncMode           string
	RoundIterations    int
	PeerTimeout        time.Duration
	Connection         string
	ListenAddress      string // empty: the executor's own IP address
	ListenPort         int
	AuthSecret         string // empty: generate one per application
	SlotWaitTimeout    time.Duration
	GoexecLogLevel     string
	GoexecMemoryLimit  int64
	GoexecThreads      int
	GoexecBinary       string
	GoexecStartTimeout time.Duration
	GoexecStopTimeout  time.Duration
	GoexecLogTailLines int
	CacheDir           string // empty: the executor's working directory
	PartitionPolicy    string
	NonFinite          string
}

// String prints the settings with the secret redacted.
func (s Settings) String() string {
	if s.AuthSecret != "" {
		s.AuthSecret = "(redacted)"
	}
	type plain Settings
	return fmt.Sprintf("%+v", plain(s))
}

// Settings validates conf and returns the typed settings, defaults filled in.
func (r *Registry) Settings(conf map[string]string) (Settings, error) {
	v, err := r.Resolve(conf)
	if err != nil {
		return Settings{}, err
	}
	str := func(k string) string { s, _ := v.Get(k).(string); return s }
	i64 := func(k string) int64 { n, _ := v.Get(k).(int64); return n }
	dur := func(k string) time.Duration { d, _ := v.Get(k).(time.Duration); return d }
	return Settings{
		SyncMode:           str(KeySyncMode),
		RoundIterations:    int(i64(KeyRoundIterations)),
		PeerTimeout:        dur(KeyPeerTimeout),
		Connection:         str(KeyConnection),
		ListenAddress:      str(KeyListenAddress),
		ListenPort:         int(i64(KeyListenPort)),
		AuthSecret:         str(KeyAuthSecret),
		SlotWaitTimeout:    dur(KeySlotWaitTimeout),
		GoexecLogLevel:     str(KeyGoexecLogLevel),
		GoexecMemoryLimit:  i64(KeyGoexecMemoryLimit),
		GoexecThreads:      int(i64(KeyGoexecThreads)),
		GoexecBinary:       str(KeyGoexecBinary),
		GoexecStartTimeout: dur(KeyGoexecStartTimeout),
		GoexecStopTimeout:  dur(KeyGoexecStopTimeout),
		GoexecLogTailLines: int(i64(KeyGoexecLogTailLines)),
		CacheDir:           str(KeyCacheDir),
		PartitionPolicy:    str(KeyPartitionPolicy),
		NonFinite:          str(KeyNonFinite),
	}, nil
}
