//! Redis topologies started for one test: a cluster or a Sentinel-watched primary with a
//! replica, each node its own `redis-server` process on a free loopback port, in a
//! temporary directory, without persistence. Only these processes are ever stopped (by
//! their PID, on drop or when a test kills one); the machine's shared Redis is not
//! touched.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when `redis-server` and `redis-cli` can be run; otherwise a skip notice, or a
/// failure when `PORTCULLIS_REQUIRE_REDIS_TOPOLOGIES` is set (as CI does).
pub fn available() -> bool {
    let ok = ["redis-server", "redis-cli"].iter().all(|b| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        assert!(
            std::env::var_os("PORTCULLIS_REQUIRE_REDIS_TOPOLOGIES").is_none(),
            "redis-server and redis-cli are required (PORTCULLIS_REQUIRE_REDIS_TOPOLOGIES is set)"
        );
        eprintln!("skip: redis-server / redis-cli not installed, topology tests not run");
    }
    ok
}

/// A port free on loopback, with its cluster bus port (+10000) free too.
fn free_port() -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair on loopback");
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portcullis-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One `redis-server` process.
pub struct Node {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    /// A directory made for this node alone, removed with it.
    parent: Option<PathBuf>,
    args: Vec<String>,
}

impl Node {
    /// A single node of its own, in its own temporary directory.
    pub fn start_plain() -> Node {
        let dir = temp_dir("single");
        let mut node = Node::start(&dir, free_port(), &[]);
        node.parent = Some(dir);
        node
    }

    fn start(dir: &Path, port: u16, extra: &[&str]) -> Node {
        let dir = dir.join(port.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.to_str().unwrap(),
            "--logfile",
            "redis.log",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut node = Node {
            port,
            child: None,
            dir,
            parent: None,
            args,
        };
        node.restart();
        node
    }

    /// Starts the process again with the same settings (same port and directory).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "node {} still runs", self.port);
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while cli(self.port, &["PING"]).as_deref() != Some("PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (SIGKILL, by its PID) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Waits until this node is a replica whose link to its primary is up.
    pub fn wait_replica_synced(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self
            .cli(&["INFO", "replication"])
            .is_some_and(|i| i.contains("role:slave") && i.contains("master_link_status:up"))
        {
            assert!(Instant::now() < deadline, "node {} did not sync", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A command's answer through `redis-cli`, trimmed; `None` when it fails.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        cli(self.port, args)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(p) = &self.parent {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// `redis-cli -p port args...`, trimmed; `None` on failure.
pub fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A Redis Cluster: `primaries` primaries, each with `replicas_each` replicas, slots spread
/// evenly, node timeout 1 s.
pub struct Cluster {
    pub nodes: Vec<Node>,
    dir: PathBuf,
}

impl Cluster {
    pub fn start(primaries: usize, replicas_each: usize) -> Cluster {
        let dir = temp_dir("cluster");
        let count = primaries * (1 + replicas_each);
        let nodes: Vec<Node> = (0..count)
            .map(|_| {
                Node::start(
                    &dir,
                    free_port(),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "1000",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let replicas = replicas_each.to_string();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas, "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli --cluster create");
        assert!(status.success(), "cluster create failed");
        let cluster = Cluster { nodes, dir };
        cluster.wait_ok(Duration::from_secs(20));
        if replicas_each > 0 {
            let primaries = cluster.primaries();
            for (i, n) in cluster.nodes.iter().enumerate() {
                if !primaries.contains(&i) {
                    n.wait_replica_synced(Duration::from_secs(20));
                }
            }
        }
        cluster
    }

    /// Waits until every running node reports `cluster_state:ok` and sees the same
    /// number of primaries.
    pub fn wait_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let ok = self.nodes.iter().filter(|n| n.child.is_some()).all(|n| {
                n.cli(&["CLUSTER", "INFO"])
                    .is_some_and(|i| i.contains("cluster_state:ok"))
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "cluster did not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `redis-cluster://` URL with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis-cluster://{}", seeds.join(","))
    }

    /// Indexes of the nodes that are primaries now.
    pub fn primaries(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| {
                self.nodes[*i].child.is_some()
                    && self.nodes[*i]
                        .cli(&["ROLE"])
                        .is_some_and(|r| r.starts_with("master"))
            })
            .collect()
    }

    /// Keys held by each running node (`DBSIZE`).
    pub fn key_counts(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.cli(&["DBSIZE"]).and_then(|s| s.parse().ok()).unwrap_or(0))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A primary, two replicas and three sentinels watching them as service `mymaster`
/// (quorum 2, down after 1 s): after a failover one replica is left to acknowledge
/// writes.
pub struct Sentinels {
    pub primary: Node,
    pub replicas: Vec<Node>,
    pub sentinels: Vec<Node>,
    dir: PathBuf,
}

pub const SERVICE: &str = "mymaster";

impl Sentinels {
    pub fn start() -> Sentinels {
        let dir = temp_dir("sentinel");
        let primary = Node::start(&dir, free_port(), &[]);
        let replicas = (0..2)
            .map(|_| {
                Node::start(
                    &dir,
                    free_port(),
                    &["--replicaof", "127.0.0.1", &primary.port.to_string()],
                )
            })
            .collect();
        let sentinels = (0..3)
            .map(|_| {
                let port = free_port();
                let conf_dir = dir.join(format!("s{port}"));
                std::fs::create_dir_all(&conf_dir).unwrap();
                let conf = conf_dir.join("sentinel.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {d}\n\
                         sentinel monitor {SERVICE} 127.0.0.1 {p} 2\n\
                         sentinel down-after-milliseconds {SERVICE} 1000\n\
                         sentinel failover-timeout {SERVICE} 5000\n\
                         sentinel parallel-syncs {SERVICE} 1\n",
                        d = conf_dir.display(),
                        p = primary.port
                    ),
                )
                .unwrap();
                let mut node = Node {
                    port,
                    child: None,
                    dir: conf_dir,
                    parent: None,
                    args: vec![conf.to_str().unwrap().to_owned(), "--sentinel".to_owned()],
                };
                node.restart();
                node
            })
            .collect();
        let s = Sentinels {
            primary,
            replicas,
            sentinels,
            dir,
        };
        // The replicas are in sync and every sentinel knows them.
        for r in &s.replicas {
            r.wait_replica_synced(Duration::from_secs(20));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let known = s.sentinels.iter().all(|n| {
                n.cli(&["SENTINEL", "REPLICAS", SERVICE]).is_some_and(|r| {
                    s.replicas
                        .iter()
                        .all(|replica| r.contains(&replica.port.to_string()))
                })
            });
            if known {
                return s;
            }
            assert!(Instant::now() < deadline, "sentinel setup did not settle");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis-sentinel://{}/{SERVICE}", hosts.join(","))
    }

    /// The port the sentinels name as primary now.
    pub fn named_primary(&self) -> Option<u16> {
        let a = self.sentinels[0].cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE])?;
        a.lines().nth(1)?.trim().parse().ok()
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        self.sentinels.clear();
        self.primary.kill();
        self.replicas.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
