import java.io.BufferedReader;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.net.NetUtils;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;

/**
 * A YARN cluster on this machine for GoCaffe's YARN integration tests: a
 * MiniDFSCluster (one NameNode, one DataNode) and a MiniYARNCluster (one
 * ResourceManager, N NodeManagers), as Spark's own YARN tests run them.
 *
 * <pre>
 * java -cp $(cat build/minicluster/classpath) GoCaffeMiniCluster \
 *     --conf-dir DIR [--nodemanagers 2] [--nm-memory-mb 2560] [--nm-vcores 2] [--min-allocation-mb 128]
 * </pre>
 *
 * Each NodeManager offers --nm-memory-mb and --nm-vcores to containers, so
 * the caller decides how many executors fit. The cluster's core-site.xml,
 * hdfs-site.xml and yarn-site.xml go to --conf-dir (a HADOOP_CONF_DIR for
 * spark-submit); then one line "GOCAFFE-MINICLUSTER READY conf=DIR
 * rm=HOST:PORT webapp=HOST:PORT fs=hdfs://HOST:PORT webhdfs=HOST:PORT
 * nmlogs=DIR,..." is
 * printed. The cluster runs until standard input closes (the test process
 * ended, however it ended) or the JVM is asked to stop (SIGTERM); a shutdown
 * hook stops YARN and HDFS either way. Working files go under the current
 * directory (target/ and build/test/data).
 */
public final class GoCaffeMiniCluster {
    private GoCaffeMiniCluster() {}

    public static void main(String[] args) throws Exception {
        String confDir = null;
        int nodeManagers = 2;
        int nmMemoryMb = 2560;
        int nmVcores = 2;
        int minAllocMb = 128;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) usage("option " + a + " needs a value");
            String v = args[++i];
            switch (a) {
                case "--conf-dir": confDir = v; break;
                case "--nodemanagers": nodeManagers = positive(a, v); break;
                case "--nm-memory-mb": nmMemoryMb = positive(a, v); break;
                case "--nm-vcores": nmVcores = positive(a, v); break;
                case "--min-allocation-mb": minAllocMb = positive(a, v); break;
                default: usage("unknown option " + a);
            }
        }
        if (confDir == null) usage("--conf-dir is required");
        File conf = new File(confDir).getAbsoluteFile();
        Files.createDirectories(conf.toPath());

        Configuration c = new YarnConfiguration();
        c.setInt(YarnConfiguration.NM_PMEM_MB, nmMemoryMb);
        // MiniYARNCluster gives each NodeManager this key's value (4096 by
        // default) instead of NM_PMEM_MB.
        c.setInt(YarnConfiguration.YARN_MINICLUSTER_NM_PMEM_MB, nmMemoryMb);
        c.setInt(YarnConfiguration.NM_VCORES, nmVcores);
        c.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, minAllocMb);
        c.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB, nmMemoryMb);
        c.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_VCORES, nmVcores);
        // Containers are killed for physical memory beyond their size, as on
        // a real cluster; virtual memory is not checked (Java and Go reserve
        // far more address space than they use).
        c.setBoolean(YarnConfiguration.NM_PMEM_CHECK_ENABLED, true);
        c.setBoolean(YarnConfiguration.NM_VMEM_CHECK_ENABLED, false);
        c.setLong(YarnConfiguration.NM_CONTAINER_MON_INTERVAL_MS, 1000);
        // A full test disk must not mark the NodeManagers unhealthy.
        c.set("yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage", "100.0");
        c.setBoolean(YarnConfiguration.NM_DISK_HEALTH_CHECK_ENABLE, false);
        // Logs stay on the NodeManagers' disks after the application (no
        // aggregation), where the tests read them; keep them a while.
        c.setBoolean(YarnConfiguration.LOG_AGGREGATION_ENABLED, false);
        c.setLong(YarnConfiguration.NM_LOG_RETAIN_SECONDS, 3600);
        c.setLong(YarnConfiguration.DEBUG_NM_DELETE_DELAY_SEC, 0);
        c.setInt(YarnConfiguration.RM_AM_MAX_ATTEMPTS, 1);
        // One vcore per container is not enforced by the default calculator;
        // memory decides what fits.
        c.set("yarn.scheduler.capacity.maximum-am-resource-percent", "1.0");
        c.set("hadoop.security.authentication", "simple");

        MiniDFSCluster dfs = new MiniDFSCluster.Builder(c).numDataNodes(1).format(true).build();
        dfs.waitActive();
        String fs = dfs.getFileSystem().getUri().toString();
        c.set("fs.defaultFS", fs);

        MiniYARNCluster yarn = new MiniYARNCluster("gocaffe", nodeManagers, 1, 1);
        AtomicBoolean stopped = new AtomicBoolean();
        Runnable stop = () -> {
            if (!stopped.compareAndSet(false, true)) return;
            System.out.println("GOCAFFE-MINICLUSTER stopping");
            System.out.flush();
            try { yarn.stop(); } catch (Throwable t) { t.printStackTrace(); }
            try { dfs.shutdown(true); } catch (Throwable t) { t.printStackTrace(); }
            System.out.println("GOCAFFE-MINICLUSTER stopped");
            System.out.flush();
        };
        Runtime.getRuntime().addShutdownHook(new Thread(stop, "minicluster-stop"));
        yarn.init(c);
        yarn.start();

        // MiniYARNCluster.start() may return before the ResourceManager has
        // put its real address in the configuration (Spark's tests wait the
        // same way): wait until it is no longer the default port.
        Configuration y = yarn.getConfig();
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (y.get(YarnConfiguration.RM_ADDRESS, "").endsWith(":" + YarnConfiguration.DEFAULT_RM_PORT)) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("ResourceManager address not set within 60 s");
            Thread.sleep(100);
        }
        if (!yarn.waitForNodeManagersToConnect(60_000))
            throw new IllegalStateException("NodeManagers did not connect within 60 s");
        y.set("fs.defaultFS", fs);
        // MiniYARNCluster maps racks with a test class of hadoop-common
        // (StaticMapping) that Spark's shaded Hadoop client lacks; clients
        // get Hadoop's default.
        y.set("net.topology.node.switch.mapping.impl", "org.apache.hadoop.net.ScriptBasedMapping");

        writeXml(y, new File(conf, "yarn-site.xml"));
        Configuration core = new Configuration(false);
        core.set("fs.defaultFS", fs);
        core.set("hadoop.security.authentication", "simple");
        writeXml(core, new File(conf, "core-site.xml"));
        Configuration hdfs = new Configuration(false);
        hdfs.set("dfs.replication", "1");
        writeXml(hdfs, new File(conf, "hdfs-site.xml"));

        StringBuilder logs = new StringBuilder();
        for (int i = 0; i < nodeManagers; i++) {
            String d = yarn.getNodeManager(i).getConfig().get(YarnConfiguration.NM_LOG_DIRS);
            if (logs.length() > 0) logs.append(',');
            logs.append(d);
        }
        System.out.println("GOCAFFE-MINICLUSTER READY conf=" + conf + " rm=" + y.get(YarnConfiguration.RM_ADDRESS)
            + " webapp=" + y.get(YarnConfiguration.RM_WEBAPP_ADDRESS) + " fs=" + fs
            + " webhdfs=" + NetUtils.getHostPortString(dfs.getNameNode().getHttpAddress()) + " nmlogs=" + logs);
        System.out.flush();

        // Run until standard input closes: the test process ended.
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try {
            while (in.readLine() != null) {
                // nothing: any input is ignored
            }
        } catch (IOException e) {
            // a broken pipe ends the cluster as EOF does
        }
        stop.run();
        System.exit(0);
    }

    private static void writeXml(Configuration c, File f) throws IOException {
        try (OutputStream o = new FileOutputStream(f)) {
            c.writeXml(o);
        }
    }

    private static int positive(String opt, String v) {
        try {
            int n = Integer.parseInt(v);
            if (n > 0) return n;
        } catch (NumberFormatException e) {
            // fall through
        }
        usage(opt + " " + v + ": not a positive integer");
        return 0;
    }

    private static void usage(String why) {
        System.err.println("GoCaffeMiniCluster: " + why);
        System.err.println("usage: GoCaffeMiniCluster --conf-dir DIR [--nodemanagers N] [--nm-memory-mb MB] "
            + "[--nm-vcores N] [--min-allocation-mb MB]");
        System.exit(2);
    }
}
