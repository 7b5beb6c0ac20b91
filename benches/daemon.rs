//! Daemon benchmarks: `cargo bench --bench daemon [-- GRAPHS SERVICES]`.
//!
//! Prints figures; asserts nothing about time. Against the fake Karmada
//! (real HTTP) with the real helm (`SMO_HELM`) and the release `smo` binary
//! as a child process, so CPU and memory are the daemon's own:
//!
//! 1. RSS of an idle daemon (no graphs);
//! 2. a no-op pass over GRAPHS×SERVICES (default 200×10) already in sync:
//!    the store and the fake are seeded as if every release were installed,
//!    so the pass reads the store, keeps every placement, recomputes every
//!    input hash, checks drift against the fake, and runs helm zero times —
//!    wall time, CPU time and peak RSS of `smo run --once`;
//! 3. RSS and idle CPU of the daemon holding that state (its watch caches
//!    filled);
//! 4. a resync of the running daemon (every graph checked for drift):
//!    requests to Karmada and the daemon's CPU time;
//! 5. file edit → first helm call (helm reading its release storage) and
//!    helm's first request of any kind, p50/p95 over 20 edits, minus the
//!    configured debounces (source 50 ms, queue 50 ms);
//! 6. out-of-band change of a Deployment → first helm call (the
//!    correction), p50/p95 over 10 changes;
//! 7. a cluster turning NotReady → recorded as NotReady in the published
//!    status (an upper bound of "graph enqueued": the pass it starts ends
//!    first);
//! 8. Git commit → helm's first request, the same tree from a repository,
//!    from the start of the fetch that brings the commit (poll and queue
//!    debounce excluded).

use fake_karmada::FakeKarmada;
use fake_karmada::testing::copy_dir;
use serde_json::{Value, json};
use smo::desired::loader::load_root;
use smo::reconcile::engine::placement_inputs_hash;
use smo::release::{self, Placement};
use smo::store::Store;
use smo::store::records::{GraphRecord, ServicePhase, ServiceRecord};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

const CLUSTERS: usize = 10;
const PROJECTS: usize = 10;
const DEBOUNCE_MS: u64 = 100;

fn main() {
    if !support::started_by_cargo_bench() {
        println!("daemon bench: built, not run (run it with `cargo bench --bench daemon`)");
        return;
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let graphs = args.first().copied().unwrap_or(200);
    let services = args.get(1).copied().unwrap_or(10);
    let helm = support::helm_or_exit("daemon");
    support::runtime().block_on(bench(graphs, services, &helm));
}

async fn bench(graphs: usize, services: usize, helm: &Path) {
    let fake = support::fake(CLUSTERS).await;

    // 1. Idle.
    let idle = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(idle.path().join("state/projects")).unwrap();
    let cfg = config(idle.path(), &fake, helm);
    let mut child = support::daemon(&cfg, "info", None);
    wait_for(
        &idle.path().join("var/status.json"),
        Duration::from_secs(60),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = smo::daemon::usage::of(&child.id().to_string()).map(|u| u.rss_kib);
    let parts = memory_parts(&child.id().to_string());
    support::stop(&mut child);
    println!("daemon idle: rss_kib={} ({})", idle_rss.unwrap_or(0), parts);

    // 2. Seeded state, in sync.
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    seed(dir.path(), graphs, services, &fake);
    println!(
        "seeded {graphs} graphs × {services} services in {} ms",
        t.elapsed().as_millis()
    );
    loader(&dir.path().join("state"));
    if std::env::var("SMO_BENCH_ONLY").as_deref() == Ok("loader") {
        return;
    }
    let cfg = config(dir.path(), &fake, helm);
    if std::env::var("SMO_BENCH_ONLY").as_deref() == Ok("git") {
        return git_commits(dir.path(), &fake).await;
    }
    fake.clear_requests();
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_smo"))
        .args(["run", "--once", "--config"])
        .arg(&cfg)
        .env("SMO_LOG", "info")
        .env("MALLOC_ARENA_MAX", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let wall = t.elapsed();
    let log = String::from_utf8_lossy(&out.stderr);
    let last = log.lines().rfind(|l| l.contains("stopped")).unwrap_or("");
    let field = |name: &str| {
        last.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .map(|v| {
                v.trim_start_matches("Some(")
                    .trim_end_matches(')')
                    .to_owned()
            })
            .unwrap_or_else(|| "?".into())
    };
    let helm_calls = fake
        .requests()
        .iter()
        .filter(|r| fake_karmada::testing::is_helm_storage(r))
        .count();
    println!(
        "no-op pass: graphs={graphs} services={} exit={:?} wall_ms={} daemon_cpu_ms={} daemon_peak_rss_kib={} helm_requests={helm_calls} api_requests={}",
        graphs * services,
        out.status.code(),
        wall.as_millis(),
        field("cpu_ms"),
        field("peak_rss_kib"),
        fake.requests().len(),
    );
    if out.status.code() != Some(0) {
        eprintln!(
            "{}",
            log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        );
    }

    // 3. The daemon holding that state, 4. a resync, and 5. edit → first
    // helm call.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}intervals:\n  resync: {RESYNC_S}s\n")).unwrap();
    // `SMO_BENCH_LOG=FILE`: the running daemon's log at
    // `SMO_BENCH_LOG_LEVEL` (default debug), to read where time goes.
    let log = std::env::var_os("SMO_BENCH_LOG").map(PathBuf::from);
    let level = match &log {
        Some(_) => std::env::var("SMO_BENCH_LOG_LEVEL").unwrap_or_else(|_| "debug".into()),
        None => "warn".into(),
    };
    let mut child = support::daemon(&cfg, &level, log.as_deref());
    let pid = child.id().to_string();
    let status = dir.path().join("var/status.json");
    tokio::time::sleep(Duration::from_secs(3)).await;
    support::wait_idle(&fake).await;
    let rss = smo::daemon::usage::of(&pid).map(|u| u.rss_kib);
    println!(
        "daemon with {} services: rss_kib={} ({}) status_json_kib={}",
        graphs * services,
        rss.unwrap_or(0),
        memory_parts(&pid),
        std::fs::metadata(&status).map_or(0, |m| m.len() / 1024)
    );
    let cpu = || smo::daemon::usage::of(&pid).map_or(0, |u| u.cpu_ms);
    let before = cpu();
    tokio::time::sleep(Duration::from_secs(IDLE_S)).await;
    println!(
        "daemon with {} services, idle: cpu_ms={} over {IDLE_S} s",
        graphs * services,
        cpu() - before
    );
    // Three passes: one varies by tens of milliseconds on a shared machine.
    let mut cpus: Vec<f64> = Vec::new();
    for _ in 0..RESYNCS {
        cpus.extend(resync(&fake, &pid, &status, graphs).await.map(|c| c as f64));
    }
    let (median, _) = percentiles(&mut cpus);
    println!("resync daemon_cpu_ms median of {}: {median:.0}", cpus.len());
    let file = dir.path().join("state/projects/p0/g0.yaml");
    // `SMO_BENCH_PERF_EDITS=FILE`: the same, during the edits.
    let perf = perf_attach("SMO_BENCH_PERF_EDITS", &pid);
    let mut latencies = Vec::new();
    // Helm's first request of any kind (discovery comes before storage).
    let mut first_requests = Vec::new();
    for i in 0..20 {
        let before = (helm_any(&fake), helm_count(&fake));
        let t = Instant::now();
        flip_cpu(&file, i);
        let mut any = None;
        loop {
            if any.is_none() && helm_any(&fake) > before.0 {
                any = Some(t.elapsed());
            }
            if helm_count(&fake) > before.1 {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                eprintln!("no helm call within 30 s of an edit");
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0 - DEBOUNCE_MS as f64;
        latencies.push(ms(t.elapsed()));
        first_requests.push(ms(any.unwrap_or_else(|| t.elapsed())));
        if log.is_some() {
            // Wall clock, to line up with the daemon's log timestamps.
            let now = std::time::SystemTime::now();
            let at = |d: std::time::SystemTime| {
                d.duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64()
            };
            println!(
                "edit {i}: written_at={:.3} helm_seen_at={:.3}",
                at(now - t.elapsed()),
                at(now)
            );
        }
        support::wait_idle(&fake).await;
    }
    perf_detach(perf);
    let (p50, p95) = percentiles(&mut latencies);
    println!(
        "edit → first helm call (debounce excluded): p50_ms={p50:.1} p95_ms={p95:.1} n={}",
        latencies.len()
    );
    let (p50, p95) = percentiles(&mut first_requests);
    println!(
        "edit → helm's first request of any kind (debounce excluded): p50_ms={p50:.1} p95_ms={p95:.1} n={}",
        first_requests.len()
    );
    helm_floor(helm);
    helm_upgrade_floor(
        helm,
        &fake,
        &dir.path().join("state/projects/p0/charts/service"),
    )
    .await;

    // 6. Out-of-band changes.
    let mut latencies = Vec::new();
    for i in 0..10 {
        let before = helm_count(&fake);
        let t = Instant::now();
        fake.mutate_object("apps/v1", "Deployment", Some("p1"), "g1-s0", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] =
                Value::String(format!("evil:{i}"));
        })
        .unwrap();
        if wait_helm(&fake, before, t) {
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        support::wait_idle(&fake).await;
    }
    let (p50, p95) = percentiles(&mut latencies);
    println!(
        "out-of-band change → first helm call: p50_ms={p50:.1} p95_ms={p95:.1} n={}",
        latencies.len()
    );

    // 7. A cluster turning NotReady.
    let t = Instant::now();
    fake.set_cluster_ready("c3", false).unwrap();
    loop {
        let seen = read_json(&status).is_some_and(|s| {
            s["clusters"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["name"] == "c3" && c["ready"] == false))
        });
        if seen || t.elapsed() > Duration::from_secs(60) {
            println!(
                "cluster NotReady → recorded: ms={} seen={seen}",
                t.elapsed().as_millis()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    support::stop(&mut child);

    // 8. The same tree from a Git repository, seeded afresh (the phases
    // above moved services off c3).
    let fake = support::fake(CLUSTERS).await;
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), graphs, services, &fake);
    config(dir.path(), &fake, helm);
    git_commits(dir.path(), &fake).await;
}

/// Git commit → helm's first request, poll excluded: the same state root
/// committed to a repository (`file://`), the daemon polling it every
/// second; the clock starts when the daemon's log says the fetch that
/// brings the commit started (the daemon logs at debug level here).
async fn git_commits(dir: &Path, fake: &FakeKarmada) {
    let origin = dir.join("origin");
    copy_dir(&dir.join("state"), &origin);
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args([
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@example.org",
            ])
            .args([
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(&origin)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "seed"]);
    let cfg = dir.join("config-git.yaml");
    let text = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    let dir_source = format!(
        "source:\n  dir: {}\n  debounce: 50ms\n",
        dir.join("state").display()
    );
    assert!(text.contains(&dir_source));
    let git_source = format!(
        "source:\n  git:\n    url: file://{}\n    ref: {{branch: main}}\n    interval: 1s\n",
        origin.display()
    );
    std::fs::write(&cfg, text.replace(&dir_source, &git_source)).unwrap();
    // Kept as `$SMO_BENCH_LOG.git` when SMO_BENCH_LOG is set.
    let log = std::env::var_os("SMO_BENCH_LOG").map_or_else(
        || dir.join("git-daemon.log"),
        |l| PathBuf::from(format!("{}.git", l.to_string_lossy())),
    );
    let mut child = support::daemon(&cfg, "debug", Some(&log));
    let status = dir.join("var/status.json");
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&origin)
        .output()
        .unwrap();
    let seed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // The first pass at the repository's revision ends first.
    let t = Instant::now();
    while !read_json(&status).is_some_and(|s| s["runs"][0]["revision"] == seed.as_str()) {
        if t.elapsed() > Duration::from_secs(120) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(10).collect();
            eprintln!(
                "git daemon: no pass at the seed revision within 120 s; its log ends:\n{}",
                tail.join("\n")
            );
            support::stop(&mut child);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    support::wait_idle(fake).await;
    let file = origin.join("projects/p0/g0.yaml");
    let mut latencies = Vec::new();
    for i in 0..10 {
        flip_cpu(&file, i);
        let before = helm_any(fake);
        let mut seen = std::fs::metadata(&log).map_or(0, |m| m.len());
        git(&["commit", "-qam", &format!("edit {i}")]);
        let mut fetch = None;
        let t = Instant::now();
        while helm_any(fake) <= before && t.elapsed() < Duration::from_secs(30) {
            // The last fetch that started before helm's request.
            if read_from(&log, &mut seen).is_some_and(|t| t.contains("git fetch started")) {
                fetch = Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if let Some(f) = fetch.filter(|_| helm_any(fake) > before) {
            latencies.push(f.elapsed().as_secs_f64() * 1000.0 - QUEUE_DEBOUNCE_MS);
        }
        support::wait_idle(fake).await;
    }
    support::stop(&mut child);
    let (p50, p95) = percentiles(&mut latencies);
    println!(
        "git commit → helm's first request (poll and queue debounce excluded, daemon at debug level): p50_ms={p50:.1} p95_ms={p95:.1} n={}",
        latencies.len()
    );
}

/// Edit `i` of a descriptor: its first service's CPU, small ↔ medium.
fn flip_cpu(file: &Path, i: usize) {
    let text = std::fs::read_to_string(file).unwrap();
    let (from, to) = if i.is_multiple_of(2) {
        ("cpu: small", "cpu: medium")
    } else {
        ("cpu: medium", "cpu: small")
    };
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

/// The reconcile queue's debounce, excluded from the Git figure as from
/// the directory's.
const QUEUE_DEBOUNCE_MS: f64 = 50.0;

/// What was appended to `path` since `offset` (which moves past it).
fn read_from(path: &Path, offset: &mut u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::Start(*offset)).ok()?;
    let mut text = String::new();
    let n = f.read_to_string(&mut text).ok()?;
    *offset += n as u64;
    Some(text)
}

/// `helm upgrade --install` of the bench's chart, run directly: from its
/// start to its first request to Karmada. The floor of "edit → helm's
/// first request" on this machine, whatever smo does before it.
async fn helm_upgrade_floor(helm: &Path, fake: &FakeKarmada, chart: &Path) {
    let mut runs = Vec::new();
    for i in 0..10 {
        let before = helm_any(fake);
        let t = Instant::now();
        let mut child = Command::new(helm)
            .args(["upgrade", "--install", &format!("floor-{i}")])
            .arg(chart)
            .args(["--namespace", "floor", "--create-namespace", "--kubeconfig"])
            .arg(fake.kubeconfig_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while helm_any(fake) <= before && t.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if helm_any(fake) > before {
            runs.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        // Not a blocking wait: the fake answers helm on this runtime.
        while matches!(child.try_wait(), Ok(None)) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        support::wait_idle(fake).await;
    }
    let (p50, p95) = percentiles(&mut runs);
    println!(
        "helm upgrade's own start → its first request: p50_ms={p50:.1} p95_ms={p95:.1} n={}",
        runs.len()
    );
}

/// helm's own start on this machine (`helm version`, no cluster): the part
/// of "edit → helm's first request" that is helm's, not smo's.
fn helm_floor(helm: &Path) {
    let mut runs: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            let _ = Command::new(helm)
                .args(["version", "--short"])
                .stdout(Stdio::null())
                .status();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let (p50, p95) = percentiles(&mut runs);
    println!("helm's own start (helm version): p50_ms={p50:.1} p95_ms={p95:.1} n=15");
}

/// The daemon's loader in this process: a full load, then loads after an
/// edit of one file (what each snapshot of a one-file change costs), and
/// the snapshot's own hashing of the tree. `SMO_BENCH_LOADS=N` repeats the
/// edit N times (default 20), e.g. under `perf record`.
fn loader(root: &Path) {
    use smo::desired::incremental::LoadCache;
    let cache = LoadCache::default();
    let t = Instant::now();
    smo::desired::loader::load_root_cached(root, None, &cache).unwrap();
    let full = t.elapsed();
    let file = root.join("projects/p0/g0.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    let n: usize = std::env::var("SMO_BENCH_LOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (mut loads, mut hashes) = (Vec::new(), Vec::new());
    for i in 0..n {
        let text = if i % 2 == 0 {
            original.replacen("cpu: small", "cpu: medium", 1)
        } else {
            original.clone()
        };
        std::fs::write(&file, text).unwrap();
        let t = Instant::now();
        smo::source::dir::snapshot(root).unwrap();
        hashes.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        smo::desired::loader::load_root_cached(root, None, &cache).unwrap();
        loads.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    std::fs::write(&file, original).unwrap();
    let stats = cache.stats();
    let (l50, l95) = percentiles(&mut loads);
    let (h50, h95) = percentiles(&mut hashes);
    println!(
        "loader: full_ms={} one_edit_p50_ms={l50:.1} p95_ms={l95:.1} judged={} reused={} snapshot_hash_p50_ms={h50:.1} p95_ms={h95:.1}",
        full.as_millis(),
        stats.judged,
        stats.reused
    );
}

const RESYNC_S: u64 = 15;
/// Resync passes measured.
const RESYNCS: usize = 3;
/// The idle window measured before the first resync.
const IDLE_S: u64 = 5;

/// Waits for the next resync pass (every graph reconciled) to end and
/// prints what it cost: requests to Karmada and the daemon's CPU time
/// (also returned, in milliseconds).
async fn resync(fake: &FakeKarmada, pid: &str, status: &Path, graphs: usize) -> Option<u64> {
    let last_seq = |s: &Value| s["runs"][0]["seq"].as_u64().unwrap_or(0);
    let seq0 = read_json(status).map_or(0, |s| last_seq(&s));
    let cpu0 = smo::daemon::usage::of(pid).map_or(0, |u| u.cpu_ms);
    let req0 = fake.requests().len();
    // `SMO_BENCH_PERF=FILE`: a `perf record` of the daemon during the
    // resync, for `perf report -i FILE` (a profile, not a figure).
    let perf = perf_attach("SMO_BENCH_PERF", pid);
    let t = Instant::now();
    loop {
        let done = read_json(status).is_some_and(|s| {
            last_seq(&s) > seq0 && s["runs"][0]["graphsReconciled"].as_u64() >= Some(graphs as u64)
        });
        if done {
            break;
        }
        if t.elapsed() > Duration::from_secs(RESYNC_S * 3) {
            eprintln!("no resync pass within {} s", RESYNC_S * 3);
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    support::wait_idle(fake).await;
    perf_detach(perf);
    let cpu = smo::daemon::usage::of(pid).map_or(0, |u| u.cpu_ms) - cpu0;
    let requests = fake.requests()[req0..].to_vec();
    let gets = requests.iter().filter(|r| r.method == "GET").count();
    println!(
        "resync of the running daemon: graphs={graphs} api_requests={} gets={gets} daemon_cpu_ms={cpu} (idle ticks included)",
        requests.len()
    );
    Some(cpu)
}

/// `perf record` of the daemon while the variable `var` names the output
/// file (a profile for `perf report -i FILE`, not a figure).
fn perf_attach(var: &str, pid: &str) -> Option<std::process::Child> {
    let out = std::env::var_os(var)?;
    Command::new("perf")
        // DWARF unwinding: the release profile keeps no frame pointers.
        .args(["record", "-F", "500", "--call-graph", "dwarf,16384", "-o"])
        .arg(out)
        .args(["-p", pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

fn perf_detach(perf: Option<std::process::Child>) {
    if let Some(mut perf) = perf {
        let _ = Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let _ = perf.wait();
    }
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Waits up to 30 s for a helm call after `before` of them; false if none.
fn wait_helm(fake: &FakeKarmada, before: usize, t: Instant) -> bool {
    while helm_count(fake) <= before {
        if t.elapsed() > Duration::from_secs(30) {
            eprintln!("no helm call within 30 s");
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Where a process's resident memory is (`/proc/PID/status`): anonymous
/// (heap, stacks) and file-backed (the binary's pages), and its threads.
fn memory_parts(pid: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    ["RssAnon", "RssFile", "Threads"]
        .iter()
        .map(|name| {
            let value = text
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .map_or("?", |v| v.trim().trim_end_matches(" kB"));
            format!("{}={value}", name.to_lowercase())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentiles(latencies: &mut [f64]) -> (f64, f64) {
    if latencies.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    (pct(0.5), pct(0.95))
}

fn helm_any(fake: &FakeKarmada) -> usize {
    fake.requests()
        .iter()
        .filter(|r| fake_karmada::testing::is_helm(r))
        .count()
}

fn helm_count(fake: &FakeKarmada) -> usize {
    fake.requests()
        .iter()
        .filter(|r| fake_karmada::testing::is_helm_storage(r))
        .count()
}

fn wait_for(path: &Path, limit: Duration) {
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < limit, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config(dir: &Path, fake: &FakeKarmada, helm: &Path) -> PathBuf {
    let cfg = dir.join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "source:\n  dir: {}\n  debounce: 50ms\nstateDir: {}\nkarmada:\n  kubeconfig: {}\nhelm:\n  binary: {}\n  timeout: 60s\nlog:\n  level: info\nhttp:\n  listen: 127.0.0.1:0\n  auth: none\n",
            dir.join("state").display(),
            dir.join("var").display(),
            fake.kubeconfig_path().display(),
            helm.display()
        ),
    )
    .unwrap();
    cfg
}

fn descriptor(graph: usize, services: usize) -> String {
    let mut s = format!("hdaGraph:\n  imVersion: 0.4.0\n  id: g{graph}\n  services:\n");
    for i in 0..services {
        // Release names are service ids in the project's namespace: ids
        // are unique per project, as they must be.
        let cp = if i + 1 < services {
            format!("[g{graph}-s{}]", i + 1)
        } else {
            "[]".into()
        };
        s.push_str(&format!(
            "    - id: g{graph}-s{i}\n      deployment:\n        intent:\n          compute: {{cpu: small, ram: small, storage: small, gpu: {{enabled: False}}}}\n          connectionPoints: {cp}\n      artifact:\n        ociImage: charts/service\n        valuesOverwrite:\n          image: {{repository: registry.example/g{graph}-s{i}, tag: \"1\"}}\n          service: {{port: 80}}\n"
        ));
    }
    s
}

/// A state root of `graphs` graphs spread over projects, and the store and
/// fake as if every release had been installed with the current inputs.
fn seed(dir: &Path, graphs: usize, services: usize, fake: &FakeKarmada) {
    let root = dir.join("state");
    let chart =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("state-example/projects/demo2/charts/service");
    for p in 0..PROJECTS {
        copy_dir(&chart, &root.join(format!("projects/p{p}/charts/service")));
    }
    for g in 0..graphs {
        let p = g % PROJECTS;
        std::fs::write(
            root.join(format!("projects/p{p}/g{g}.yaml")),
            descriptor(g, services),
        )
        .unwrap();
    }
    let state = load_root(&root).unwrap();
    assert!(!state.has_errors(), "{:?}", state.findings.first());
    std::fs::create_dir_all(dir.join("var")).unwrap();
    let store = Store::open(dir.join("var/smo.redb")).unwrap();
    for p in 0..PROJECTS {
        let _ = fake.put_object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("p{p}")}}),
        );
    }
    for (gi, graph) in state.valid_graphs().enumerate() {
        let placement: Placement = graph
            .descriptor
            .hda_graph
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.to_string(), vec![format!("c{}", (gi + i) % CLUSTERS)]))
            .collect();
        let inputs = release::inputs(graph, &placement, &root).unwrap();
        let record = GraphRecord {
            project: graph.project.clone(),
            graph: graph.id().to_owned(),
            file: graph.file.clone(),
            desired_hash: String::new(),
            suspended: false,
            last_applied_revision: None,
            last_attempted_revision: None,
            placement: placement.clone(),
            placement_inputs_hash: Some(placement_inputs_hash(graph)),
            placement_revision: None,
            conditions: Vec::new(),
            last_error: None,
            updated_at: 0,
            failures: 0,
            next_retry_at: None,
            dashboards: BTreeMap::new(),
            origin: None,
            last_change: None,
        };
        let records: Vec<ServiceRecord> = inputs
            .iter()
            .map(|i| {
                let manifest = manifest(&i.release, &i.namespace);
                for doc in manifest.split("\n---\n") {
                    let mut v: Value = smo::validate::yaml::parse_documents(doc).unwrap()[0]
                        .value
                        .clone();
                    // What helm stamps on everything a release creates.
                    v["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "Helm"});
                    v["metadata"]["annotations"] = json!({
                        "meta.helm.sh/release-name": i.release,
                        "meta.helm.sh/release-namespace": i.namespace,
                    });
                    fake.put_object(v).unwrap();
                }
                ServiceRecord {
                    project: graph.project.clone(),
                    graph: graph.id().to_owned(),
                    service: i.service.clone(),
                    namespace: i.namespace.clone(),
                    release: i.release.clone(),
                    release_revision: Some(1),
                    input_hash: Some(i.hash.clone()),
                    phase: ServicePhase::Deployed,
                    clusters: placement[&i.service].clone(),
                    replicas: BTreeMap::new(),
                    trigger: Default::default(),
                    blocked_by: None,
                    last_error: None,
                    updated_at: 0,
                    // As smo records it after an install.
                    manifest: Some(smo::adapters::manifest::canonical(
                        &smo::adapters::manifest::parse(&manifest).unwrap(),
                    )),
                    drifted: Vec::new(),
                }
            })
            .collect();
        store
            .write(|tx| {
                tx.put_graph(&record)?;
                for r in &records {
                    tx.put_service(r)?;
                }
                Ok(())
            })
            .unwrap();
    }
}

/// What a release of the example chart looks like to the drift check (its
/// container named as the chart names it: helm's apply merges containers
/// by name, and a seeded container of another name would stay beside the
/// chart's, a drift no upgrade corrects).
fn manifest(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: service\n          image: registry.example/{name}:1\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  selector: {{app: {name}}}\n  ports:\n    - port: 80\n"
    )
}
