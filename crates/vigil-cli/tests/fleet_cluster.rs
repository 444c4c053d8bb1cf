//! Fleet mode on a three-server NATS cluster: the deny bucket is a
//! JetStream stream with three replicas (`[cluster] replicas = 3`), and the
//! fleet keeps denying and lifting when one NATS server is killed. Real
//! `nats-server` processes (JetStream clustering, 127.0.0.1) and real
//! `vigil serve --cluster` nodes, each given all three servers. Needs
//! `nats-server` (Debian package `nats-server`; /usr/sbin is searched too).

#![allow(clippy::unwrap_used)]

mod fleet_support;
mod serve_support;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet_support::{cluster_status, denied_keys, hex, nats_server, subject, verdict};
use serde_json::{json, Value};
use serve_support::{next_event, subscribe, Api, Fixture, Sidecar};

/// The deny bucket's stream for the default fleet.
const DENY: &str = "KV_vigil_deny";
/// How long a deny or a lift may take to cross the fleet while one server
/// is down. nats-server before 2.12 may place an ephemeral (R1) consumer,
/// such as a KV watch, on the offline peer: its creation then times out,
/// about half the time, and the node's session retries with backoff
/// (nats-io/nats-server#7165).
const OUTAGE: Duration = Duration::from_secs(90);
/// The shared revocation data's object store.
const REVOCATION: &str = "OBJ_vigil_revocation";

/// One `nats-server -js` of the cluster, restartable on the same ports and
/// store directory.
struct Server {
    name: String,
    /// Client, route and monitoring ports.
    ports: [u16; 3],
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// Three servers routed to each other, cluster `vigiltest`.
struct Cluster {
    servers: Vec<Server>,
    http: reqwest::Client,
}

impl Cluster {
    fn start() -> Self {
        // All nine ports held at once, so none is handed out twice.
        let listeners: Vec<TcpListener> = (0..9)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        drop(listeners);
        let mut cluster = Self {
            servers: (0..3)
                .map(|i| Server {
                    name: format!("n{}", i + 1),
                    ports: [ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]],
                    child: None,
                    dir: tempfile::tempdir().unwrap(),
                })
                .collect(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        };
        for i in 0..3 {
            cluster.restart(i);
        }
        cluster
    }

    /// The client URLs of every server but `except`, n1 first.
    fn urls(&self, except: Option<usize>) -> String {
        self.servers
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != except)
            .map(|(_, s)| format!("nats://127.0.0.1:{}", s.ports[0]))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of server `name`.
    fn index(&self, name: &str) -> usize {
        self.servers.iter().position(|s| s.name == name).unwrap()
    }

    fn restart(&mut self, i: usize) {
        let routes = self
            .servers
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, s)| format!("nats://127.0.0.1:{}", s.ports[1]))
            .collect::<Vec<_>>()
            .join(",");
        let server = &mut self.servers[i];
        assert!(server.child.is_none());
        let [client, route, monitor] = server.ports;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(server.dir.path().join("nats.log"))
            .unwrap();
        let child = Command::new(nats_server())
            .args(["-js", "-sd"])
            .arg(server.dir.path().join("store"))
            .args(["-n", &server.name, "-a", "127.0.0.1"])
            .args(["-p", &client.to_string(), "-m", &monitor.to_string()])
            .args(["--cluster_name", "vigiltest"])
            .args(["--cluster", &format!("nats://127.0.0.1:{route}")])
            .args(["--routes", &routes])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server (apt-get install nats-server)");
        server.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", client)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`.
    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `GET /<path>` of server `i`'s monitoring port.
    async fn monitor(&self, i: usize, path: &str) -> Option<Value> {
        let url = format!("http://127.0.0.1:{}/{path}", self.servers[i].ports[2]);
        let text = self.http.get(url).send().await.ok()?.text().await.ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Waits until every running server knows the JetStream meta leader.
    async fn wait_meta_leader(&self) {
        for (i, server) in self.servers.iter().enumerate() {
            if server.child.is_none() {
                continue;
            }
            let held = eventually(Duration::from_secs(30), || async {
                let jsz = self.monitor(i, "jsz").await;
                jsz.is_some_and(|j| {
                    j["meta_cluster"]["leader"]
                        .as_str()
                        .is_some_and(|l| !l.is_empty())
                })
            })
            .await;
            assert!(
                held,
                "{}: no JetStream meta leader\n{}",
                server.name,
                self.logs()
            );
        }
    }

    /// Stream `name` as server `i` reports it (`/jsz?streams=true`).
    async fn stream(&self, i: usize, name: &str) -> Option<Value> {
        let jsz = self.monitor(i, "jsz?streams=true&config=true").await?;
        jsz["account_details"]
            .as_array()?
            .iter()
            .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
            .find(|s| s["name"] == name)
    }

    /// Which server (index) each vigil node is connected to, by the
    /// connection name `vigil <node>`.
    async fn placement(&self) -> Vec<(String, usize)> {
        let mut found = Vec::new();
        for i in 0..self.servers.len() {
            let Some(connz) = self.monitor(i, "connz?limit=1024").await else {
                continue;
            };
            for c in connz["connections"].as_array().cloned().unwrap_or_default() {
                if let Some(node) = c["name"].as_str().and_then(|n| n.strip_prefix("vigil ")) {
                    found.push((node.to_owned(), i));
                }
            }
        }
        found.sort();
        found
    }

    fn logs(&self) -> String {
        self.servers
            .iter()
            .map(|s| {
                let log =
                    std::fs::read_to_string(s.dir.path().join("nats.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {} ---\n{}", s.name, tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}

/// A node of the fleet on every server of `cluster` (but `except`), with
/// three replicas.
fn node(fx: &Fixture, cluster: &Cluster, name: &str, except: Option<usize>) -> Sidecar {
    let config = fx.dir.path().join("replicas.toml");
    std::fs::write(&config, "[cluster]\nreplicas = 3\n").unwrap();
    let (urls, config) = (cluster.urls(except), config.display().to_string());
    let args = ["--cluster", &urls, "--node-id", name, "--config", &config];
    let data = fx.dir.path().join(format!("node-{name}"));
    Sidecar::start(&data, &fx.anchor(), &args, &[])
}

/// Polls `check` until it holds or `within` has passed; whether it held.
async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connected(api: &Api) -> bool {
    let reply = api.get("/readyz").await;
    reply.status == 200 && reply.body["cluster"]["state"] == "connected"
}

async fn cluster_state(api: &Api) -> Value {
    api.get("/readyz").await.body["cluster"]["state"].clone()
}

/// Every node's log and the tail of every server's.
fn logs(nodes: &[Sidecar], cluster: &Cluster) -> String {
    let nodes: Vec<String> = ["a", "b", "c"]
        .iter()
        .zip(nodes)
        .map(|(n, s)| format!("--- node {n} ---\n{}", s.log_text()))
        .collect();
    format!("{}\n{}", nodes.join("\n"), cluster.logs())
}

/// Which NATS server the scenario kills.
#[derive(Clone, Copy, Debug)]
enum Victim {
    /// The one the most vigil nodes are connected to (they reconnect).
    MostClients,
    /// The deny stream's leader (JetStream elects another).
    StreamLeader,
}

/// Three nodes on three servers; one server killed; a deny on a reaches b
/// and c, a lift on c reaches a; the server restarted catches up.
async fn survives_losing(victim: Victim) {
    let fx = Fixture::start().await;
    let mut cluster = Cluster::start();
    cluster.wait_meta_leader().await;
    let nodes: Vec<Sidecar> = ["a", "b", "c"]
        .iter()
        .map(|n| node(&fx, &cluster, n, None))
        .collect();
    let apis: Vec<Api> = nodes.iter().map(|n| Api::new(n, None)).collect();
    for api in &apis {
        let up = eventually(Duration::from_secs(30), || connected(api)).await;
        assert!(
            up,
            "never connected: {}\n{}",
            api.get("/readyz").await.text,
            logs(&nodes, &cluster)
        );
    }
    // The bucket is replicated on all three servers.
    let stream = cluster
        .stream(0, DENY)
        .await
        .expect("the deny stream on n1");
    assert_eq!(stream["config"]["num_replicas"], 3, "{stream}");
    assert_eq!(
        stream["cluster"]["replicas"].as_array().map(Vec::len),
        Some(2),
        "{stream}"
    );

    let doomed = fx.leaf("doomed");
    let innocent = fx.leaf("innocent");
    let mut streams = Vec::new();
    for api in &apis[1..] {
        api.register(&fx.chain(&doomed), json!({}), None).await;
        api.register(&fx.chain(&innocent), json!({}), None).await;
        streams.push(subscribe(api, None).await);
    }

    let placement = cluster.placement().await;
    assert_eq!(placement.len(), 3, "{placement:?}");
    let killed = match victim {
        Victim::MostClients => (0..3)
            .max_by_key(|i| (placement.iter().filter(|(_, s)| s == i).count(), 3 - i))
            .unwrap(),
        Victim::StreamLeader => cluster.index(stream["cluster"]["leader"].as_str().unwrap()),
    };
    eprintln!(
        "{victim:?}: killing {} (nodes on servers: {placement:?}; stream leader {})",
        cluster.servers[killed].name, stream["cluster"]["leader"]
    );
    cluster.kill(killed);

    // Denied on a: b and c tear the doomed leaf down, not the innocent one.
    let reply = apis[0]
        .post(
            "/v1/deny",
            &json!({"cert_sha256": hex(&doomed.der), "reason": "key leaked"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let denied_at = Instant::now();
    for (i, stream) in streams.iter_mut().enumerate() {
        let node = ["b", "c"][i];
        let within = OUTAGE.saturating_sub(denied_at.elapsed());
        let event = next_event(stream, "teardown", within).await;
        let event =
            event.unwrap_or_else(|| panic!("node {node}: no teardown\n{}", logs(&nodes, &cluster)));
        eprintln!(
            "{victim:?}: teardown on {node} after {:?}",
            denied_at.elapsed()
        );
        assert_eq!(event.data["reason"], "denied", "{:?}", event.data);
        assert_eq!(event.data["subject"], subject(&doomed), "{:?}", event.data);
        assert!(
            next_event(stream, "teardown", Duration::from_millis(500))
                .await
                .is_none(),
            "node {node}: a second teardown (the innocent leaf?)"
        );
    }
    // The rule holds everywhere (it is checked before revocation data).
    for api in &apis {
        assert_eq!(verdict(api, &fx.chain(&doomed)).await["reason"], "denied");
    }

    // Lifted on c: a (and b) see it.
    let reply = apis[2]
        .delete("/v1/deny", Some(&json!({"cert_sha256": hex(&doomed.der)})))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let lifted_at = Instant::now();
    for (api, node) in apis.iter().zip(["a", "b"]) {
        let within = OUTAGE.saturating_sub(lifted_at.elapsed());
        let lifted = eventually(within, || async { denied_keys(api).await.is_empty() }).await;
        assert!(
            lifted,
            "node {node}: the lift never arrived\n{}",
            logs(&nodes, &cluster)
        );
        eprintln!("{victim:?}: lift on {node} after {:?}", lifted_at.elapsed());
    }

    // The killed server back: it catches up on the stream, and a deny
    // made now reaches every node.
    cluster.restart(killed);
    cluster.wait_meta_leader().await;
    let last_seq = |s: Option<Value>| s.and_then(|s| s["state"]["last_seq"].as_u64());
    let caught_up = eventually(Duration::from_secs(30), || async {
        let seqs = [
            last_seq(cluster.stream(0, DENY).await),
            last_seq(cluster.stream(1, DENY).await),
            last_seq(cluster.stream(2, DENY).await),
        ];
        seqs[0].is_some_and(|s| s >= 2) && seqs.iter().all(|s| *s == seqs[0])
    })
    .await;
    assert!(
        caught_up,
        "{} never caught up\n{}",
        cluster.servers[killed].name,
        logs(&nodes, &cluster)
    );
    let later = fx.leaf("later");
    let reply = apis[1]
        .post(
            "/v1/deny",
            &json!({"cert_sha256": hex(&later.der), "reason": "after the restart"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    for (api, node) in apis.iter().zip(["a", "b", "c"]) {
        let consistent = eventually(Duration::from_secs(30), || async {
            cluster_state(api).await == "connected" && denied_keys(api).await == [hex(&later.der)]
        })
        .await;
        assert!(
            consistent,
            "node {node}: deny list {:?}, {}\n{}",
            denied_keys(api).await,
            api.get("/readyz").await.text,
            logs(&nodes, &cluster)
        );
    }

    // And every node still verifies: ready, the innocent leaf and the
    // lifted one accepted (revocation data shared over the same cluster).
    for (api, node) in apis.iter().zip(["a", "b", "c"]) {
        let verifies = eventually(Duration::from_secs(30), || async {
            api.get("/readyz").await.status == 200
                && verdict(api, &fx.chain(&innocent)).await["verdict"] == "accepted"
                && verdict(api, &fx.chain(&doomed)).await["verdict"] == "accepted"
        })
        .await;
        assert!(
            verifies,
            "node {node} no longer verifies: {}\nreadyz {}\n{}",
            verdict(api, &fx.chain(&innocent)).await,
            api.get("/readyz").await.text,
            logs(&nodes, &cluster)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_survives_losing_the_nats_server_its_nodes_use() {
    survives_losing(Victim::MostClients).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_survives_losing_the_deny_streams_leader() {
    survives_losing(Victim::StreamLeader).await;
}

/// A node that first needs a CA's revocation data while one NATS server
/// is down (the leader of the revocation store's stream, not its own
/// server) still gets it: from the fleet or from the CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_verifying_first_during_the_outage_still_gets_revocation_data() {
    let fx = Fixture::start().await;
    let mut cluster = Cluster::start();
    cluster.wait_meta_leader().await;
    let b = node(&fx, &cluster, "b", None);
    let api_b = Api::new(&b, None);
    let up = eventually(Duration::from_secs(30), || connected(&api_b)).await;
    assert!(up, "b never connected\n{}", b.log_text());
    // b fetches the chain's revocation data and shares it.
    let innocent = fx.leaf("innocent");
    api_b.register(&fx.chain(&innocent), json!({}), None).await;
    let published = eventually(Duration::from_secs(30), || async {
        cluster_status(&api_b).await["revocation_published"].as_u64() >= Some(4)
    })
    .await;
    assert!(published, "{}", cluster_status(&api_b).await);
    let leader = cluster.stream(0, REVOCATION).await.unwrap()["cluster"]["leader"]
        .as_str()
        .unwrap()
        .to_owned();
    let killed = cluster.index(&leader);
    // a is connected elsewhere (so it keeps its session) and has verified
    // nothing yet.
    let a = node(&fx, &cluster, "a", Some(killed));
    let api_a = Api::new(&a, None);
    let up = eventually(Duration::from_secs(30), || connected(&api_a)).await;
    assert!(up, "a never connected\n{}", a.log_text());
    cluster.kill(killed);

    let verifies = eventually(Duration::from_secs(30), || async {
        verdict(&api_a, &fx.chain(&innocent)).await["verdict"] == "accepted"
            && api_a.get("/readyz").await.status == 200
    })
    .await;
    assert!(
        verifies,
        "a never verifies the innocent leaf: {}\nreadyz {}\n--- node a ---\n{}\n{}",
        verdict(&api_a, &fx.chain(&innocent)).await,
        api_a.get("/readyz").await.text,
        a.log_text(),
        cluster.logs()
    );
}
