//! The state-root loader: layout rules, duplicates, isolation of broken
//! files, hidden files, symlink escapes.

use crate::support::graph;
use smo::desired::loader::load_root;
use std::fs;
use std::path::Path;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

#[test]
fn one_broken_file_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "projects/p/good.yaml",
        &graph("good").service("a").cpu("small").yaml(),
    );
    write(
        dir.path(),
        "projects/p/broken.yaml",
        "hdaGraph:\n  id: [unclosed\n",
    );
    write(
        dir.path(),
        "projects/q/also-good.yaml",
        &graph("other").service("b").yaml(),
    );
    let state = load_root(dir.path()).unwrap();
    let valid: Vec<(&str, &str)> = state
        .valid_graphs()
        .map(|g| (g.project.as_str(), g.id()))
        .collect();
    assert_eq!(valid, vec![("p", "good"), ("q", "other")]);
    assert_eq!(state.graphs.len(), 3);
    assert!(
        state
            .findings
            .iter()
            .all(|f| f.file == "projects/p/broken.yaml")
    );
    assert!(state.has_errors());
}

#[test]
fn duplicate_identities_are_errors_on_both_files_and_neither_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let g = graph("same").service("a").yaml();
    write(dir.path(), "projects/p/one.yaml", &g);
    write(dir.path(), "projects/p/two.yml", &g);
    // The same id in another project is a different graph.
    write(dir.path(), "projects/other/three.yaml", &g);
    let state = load_root(dir.path()).unwrap();
    let valid: Vec<&str> = state.valid_graphs().map(|g| g.project.as_str()).collect();
    assert_eq!(valid, vec!["other"]);
    let files: Vec<(&str, usize, &str)> = state
        .findings
        .iter()
        .map(|f| (f.file.as_str(), f.line, f.pointer.as_str()))
        .collect();
    assert_eq!(
        files,
        vec![
            ("projects/p/one.yaml", 3, "/hdaGraph/id"),
            ("projects/p/two.yml", 3, "/hdaGraph/id")
        ]
    );
    assert!(state.findings[0].message.contains("projects/p/two.yml"));
}

#[test]
fn a_service_id_shared_by_two_graphs_of_a_project_is_an_error_on_both() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "projects/p/one.yaml",
        &graph("one").service("x").service("web").yaml(),
    );
    write(
        dir.path(),
        "projects/p/two.yaml",
        &graph("two").service("web").yaml(),
    );
    // Another project is another namespace: no clash.
    write(
        dir.path(),
        "projects/q/three.yaml",
        &graph("three").service("web").yaml(),
    );
    let state = load_root(dir.path()).unwrap();
    let valid: Vec<&str> = state.valid_graphs().map(|g| g.id()).collect();
    assert_eq!(valid, vec!["three"]);
    let found: Vec<(&str, &str)> = state
        .findings
        .iter()
        .map(|f| (f.file.as_str(), f.pointer.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            ("projects/p/one.yaml", "/hdaGraph/services/1/id"),
            ("projects/p/two.yaml", "/hdaGraph/services/0/id")
        ]
    );
    assert!(state.findings[0].line > 3, "points at the service id line");
    assert!(
        state.findings[0]
            .message
            .contains("graph `two` (projects/p/two.yaml)"),
        "{}",
        state.findings[0].message
    );
}

#[test]
fn hidden_non_yaml_and_chart_files_are_not_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "projects/p/g.yaml",
        &graph("g").service("a").chart("charts/a").yaml(),
    );
    write(dir.path(), "projects/p/.g.yaml.swp", "garbage: [");
    write(dir.path(), "projects/p/.hidden.yaml", "garbage: [");
    write(dir.path(), "projects/p/README.md", "# notes");
    write(
        dir.path(),
        "projects/p/charts/a/Chart.yaml",
        "apiVersion: v2\nname: a\nversion: 0.1.0\n",
    );
    write(
        dir.path(),
        "projects/p/charts/a/values.yaml",
        "replicas: 1\n",
    );
    write(dir.path(), "projects/.trash/g.yaml", "garbage: [");
    let state = load_root(dir.path()).unwrap();
    assert!(state.findings.is_empty(), "{:#?}", state.findings);
    assert_eq!(state.graphs.len(), 1);
}

#[cfg(unix)]
#[test]
fn a_chart_symlink_that_leaves_the_root_is_an_error() {
    let outside = tempfile::tempdir().unwrap();
    write(
        outside.path(),
        "evil/Chart.yaml",
        "apiVersion: v2\nname: evil\nversion: 0.1.0\n",
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "projects/p/g.yaml",
        &graph("g").service("a").chart("charts/evil").yaml(),
    );
    fs::create_dir_all(dir.path().join("projects/p/charts")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("evil"),
        dir.path().join("projects/p/charts/evil"),
    )
    .unwrap();
    let state = load_root(dir.path()).unwrap();
    assert_eq!(state.valid_graphs().count(), 0);
    assert_eq!(state.findings.len(), 1);
    assert_eq!(
        state.findings[0].pointer,
        "/hdaGraph/services/0/artifact/ociImage"
    );
    assert!(
        state.findings[0].message.contains("outside the state root"),
        "{}",
        state.findings[0].message
    );
}

/// A state root under a host directory that also holds a secret: the
/// descriptor `projects/p/g.yaml` uses the chart `charts/a` next to it.
#[cfg(unix)]
fn chart_with_link(link: &str, target: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("secret.txt"), "hunter2\n").unwrap();
    let root = host.path().join("state");
    write(
        &root,
        "projects/p/g.yaml",
        &graph("g").service("a").chart("charts/a").yaml(),
    );
    write(
        &root,
        "projects/p/charts/a/Chart.yaml",
        "apiVersion: v2\nname: a\nversion: 0.1.0\n",
    );
    write(
        &root,
        "projects/p/charts/a/templates/creds.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ndata:\n  creds: {{ .Files.Get \"files/creds\" | b64enc }}\n",
    );
    let link = root.join("projects/p/charts/a").join(link);
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, &link).unwrap();
    assert!(link.is_file(), "the link resolves");
    (host, root)
}

#[cfg(unix)]
fn chart_finding(root: &Path) -> smo::validate::findings::Finding {
    let state = load_root(root).unwrap();
    assert_eq!(state.valid_graphs().count(), 0);
    assert_eq!(state.findings.len(), 1, "{:#?}", state.findings);
    state.findings[0].clone()
}

#[cfg(unix)]
#[test]
fn a_chart_template_linked_outside_the_state_root_is_an_error() {
    let host = tempfile::tempdir().unwrap();
    let secret = host.path().join("secret.txt");
    fs::write(&secret, "hunter2\n").unwrap();
    let (_keep, root) = chart_with_link("templates/x.yaml", secret.to_str().unwrap());
    let f = chart_finding(&root);
    assert_eq!(
        (f.file.as_str(), f.line, f.pointer.as_str()),
        (
            "projects/p/g.yaml",
            13,
            "/hdaGraph/services/0/artifact/ociImage"
        )
    );
    assert!(f.message.contains("`templates/x.yaml`"), "{}", f.message);
    assert!(
        f.message.contains("outside the state root"),
        "{}",
        f.message
    );
}

#[cfg(unix)]
#[test]
fn a_chart_file_linked_to_credentials_outside_the_chart_is_an_error() {
    // charts/a/files/creds -> state/../secret.txt, read by `.Files.Get`.
    let (_host, root) = chart_with_link("files/creds", "../../../../../../secret.txt");
    let f = chart_finding(&root);
    assert_eq!(
        (f.file.as_str(), f.line, f.pointer.as_str()),
        (
            "projects/p/g.yaml",
            13,
            "/hdaGraph/services/0/artifact/ociImage"
        )
    );
    assert!(
        f.message
            .contains("`files/creds` is a symlink to `../../../../../../secret.txt`"),
        "{}",
        f.message
    );
}

#[cfg(unix)]
#[test]
fn a_chart_symlink_that_stays_inside_the_chart_is_fine() {
    let (_host, root) = chart_with_link("templates/y.yaml", "creds.yaml");
    let state = load_root(&root).unwrap();
    assert!(state.findings.is_empty(), "{:#?}", state.findings);
    assert_eq!(state.valid_graphs().count(), 1);
}

#[cfg(unix)]
#[test]
fn a_descriptor_symlink_that_leaves_the_root_is_not_read() {
    let outside = tempfile::tempdir().unwrap();
    write(
        outside.path(),
        "secret.yaml",
        &graph("g").service("a").yaml(),
    );
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("projects/p")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.yaml"),
        dir.path().join("projects/p/g.yaml"),
    )
    .unwrap();
    let state = load_root(dir.path()).unwrap();
    assert_eq!(state.valid_graphs().count(), 0);
    assert!(state.findings[0].message.contains("leaves the state root"));
}

#[test]
fn project_directories_must_be_dns_labels() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "projects/My_Project/g.yaml",
        &graph("g").service("a").yaml(),
    );
    let state = load_root(dir.path()).unwrap();
    assert_eq!(state.valid_graphs().count(), 0);
    assert!(
        state.findings[0]
            .message
            .contains("`My_Project` is not a DNS-1123 label")
    );
}

/// A graph in a system namespace would have smo install, label and prune
/// there: each of the project's files carries the error, no graph is used.
#[test]
fn project_directories_must_not_be_system_namespaces() {
    for project in smo::desired::loader::RESERVED_PROJECTS {
        let dir = tempfile::tempdir().unwrap();
        let g = graph("g").service("a").yaml();
        write(dir.path(), &format!("projects/{project}/g.yaml"), &g);
        write(
            dir.path(),
            &format!("projects/{project}/h.yaml"),
            &graph("h").service("b").yaml(),
        );
        write(dir.path(), "projects/apps/g.yaml", &g);
        let state = load_root(dir.path()).unwrap();
        let valid: Vec<&str> = state.valid_graphs().map(|g| g.project.as_str()).collect();
        assert_eq!(valid, ["apps"], "{project}");
        let errors: Vec<(&str, usize, usize)> = state
            .findings
            .iter()
            .filter(|f| f.is_error())
            .map(|f| (f.file.as_str(), f.line, f.column))
            .collect();
        let (g_file, h_file) = (
            format!("projects/{project}/g.yaml"),
            format!("projects/{project}/h.yaml"),
        );
        assert_eq!(
            errors,
            [(g_file.as_str(), 1, 1), (h_file.as_str(), 1, 1)],
            "{project}"
        );
        assert!(
            state.findings.iter().filter(|f| f.is_error()).all(|f| f
                .message
                .contains(&format!("`{project}` names a system namespace"))),
            "{:?}",
            state.findings
        );
        // The ids stay known: a graph already deployed there is held, not removed.
        assert_eq!(state.graphs.iter().filter(|e| e.id.is_some()).count(), 3);
    }
}

#[test]
fn intents_are_translated_with_the_table_from_smo_yaml() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "smo.yaml",
        "intents:\n  cpu: {small: 1500m}\n  ram: {light: 256Mi}\n",
    );
    write(
        dir.path(),
        "projects/p/g.yaml",
        &graph("g")
            .service("a")
            .cpu("small")
            .service("b")
            .cpu("large")
            .depends_on("a")
            .yaml(),
    );
    let state = load_root(dir.path()).unwrap();
    assert!(state.findings.is_empty(), "{:#?}", state.findings);
    let g = state.valid_graphs().next().unwrap();
    assert_eq!(g.resources[0].cpu_cores, 1.5);
    assert_eq!(g.resources[1].cpu_cores, 8.0);
    assert_eq!(g.resources[0].memory_bytes, 256.0 * 1024.0 * 1024.0);
}

#[test]
fn broken_settings_are_reported_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "smo.yaml",
        "scaling:\n  minReplicas: 5\n  maxReplicas: 2\nplacement:\n  timeLimit: soon\n",
    );
    write(
        dir.path(),
        "projects/p/g.yaml",
        &graph("g").service("a").yaml(),
    );
    let state = load_root(dir.path()).unwrap();
    assert!(!state.settings_valid);
    let at: Vec<(usize, &str)> = state
        .findings
        .iter()
        .map(|f| (f.line, f.pointer.as_str()))
        .collect();
    assert_eq!(
        at,
        vec![(2, "/scaling/minReplicas"), (5, "/placement/timeLimit")]
    );
}

#[test]
fn cluster_files_are_checked_and_pins_to_unknown_clusters_warn() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "clusters/edge.yaml",
        "cluster:\n  name: edge\n  reserve: {cpu: 2 cores}\n",
    );
    write(dir.path(), "clusters/core.yaml", "cluster:\n  name: kern\n");
    write(
        dir.path(),
        "clusters/gpu.yaml",
        "cluster:\n  name: gpu\n  carbonIntensity: 50\n",
    );
    write(
        dir.path(),
        "projects/p/g.yaml",
        "hdaGraph:\n  imVersion: 0.4.0\n  id: g\n  services:\n    - id: a\n      deployment:\n        trigger: {auto: {}}\n        intent:\n          clusters: [gpu, mars]\n      artifact:\n        ociImage: oci://r/c/a\n",
    );
    let state = load_root(dir.path()).unwrap();
    let got: Vec<(&str, usize, &str, String)> = state
        .findings
        .iter()
        .map(|f| {
            (
                f.file.as_str(),
                f.line,
                f.pointer.as_str(),
                f.severity.to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("clusters/core.yaml", 2, "/cluster/name", "error".to_owned()),
            (
                "clusters/edge.yaml",
                3,
                "/cluster/reserve/cpu",
                "error".to_owned()
            ),
            (
                "projects/p/g.yaml",
                9,
                "/hdaGraph/services/0/deployment/intent/clusters/1",
                "warning".to_owned()
            ),
        ]
    );
    assert_eq!(state.clusters.keys().collect::<Vec<_>>(), vec!["gpu"]);
    // A warning never blocks the graph.
    assert_eq!(state.valid_graphs().count(), 1);
}

#[test]
fn an_empty_state_root_is_valid_and_empty() {
    let dir = tempfile::tempdir().unwrap();
    let state = load_root(dir.path()).unwrap();
    assert!(state.graphs.is_empty() && state.findings.is_empty());
}

#[test]
fn a_missing_root_is_an_io_error() {
    assert!(load_root(Path::new("/nonexistent/smo-state")).is_err());
}

#[test]
fn duplicate_identities_in_files_named_on_the_command_line_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let g = graph("same").service("a").yaml();
    write(dir.path(), "projects/p/one.yaml", &g);
    write(dir.path(), "projects/p/two.yaml", &g);
    write(dir.path(), "loose/one.yaml", &g);
    write(dir.path(), "loose/two.yaml", &g);
    let files = |a: &str, b: &str| vec![dir.path().join(a), dir.path().join(b)];
    let state =
        smo::desired::loader::load_files(&files("projects/p/one.yaml", "projects/p/two.yaml"))
            .unwrap();
    assert_eq!(state.findings.len(), 2);
    // Files outside projects/<project>/ have no identity to collide with.
    let state =
        smo::desired::loader::load_files(&files("loose/one.yaml", "loose/two.yaml")).unwrap();
    assert!(state.findings.is_empty(), "{:#?}", state.findings);
}

const PROVISION: &str = "cluster:
  name: edge-3
  provision:
    nfvcl:
      vim: {name: os-lab, url: https://keystone.example:5000/v3, tenant: smo, user: smo, passwordFile: /etc/smo/credentials/vim-password}
      area: 3
      mgmtNet: dmz-internal
      masterFlavor: {vcpu: 4, memoryMb: 8192, storageGb: 40}
      workerFlavor: {vcpu: 8, memoryMb: 16384, storageGb: 80}
      workers: 2
";

#[test]
fn a_cluster_file_may_declare_an_nfvcl_provision() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "clusters/edge-3.yaml", PROVISION);
    let state = load_root(dir.path()).unwrap();
    assert!(state.findings.is_empty(), "{:?}", state.findings);
    let p = state.clusters["edge-3"].provision.as_ref().unwrap();
    assert_eq!(p.cni, "flannel", "the default CNI");
    assert_eq!((p.area, p.workers, p.worker_flavor.vcpu), (3, 2, 8));
    assert_eq!(p.vim.password_file, "/etc/smo/credentials/vim-password");
}

#[test]
fn provision_errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "clusters/edge-3.yaml",
        &PROVISION
            .replace("workers: 2", "workers: -1")
            .replace("vcpu: 4", "vcpu: 0"),
    );
    write(
        dir.path(),
        "clusters/edge-4.yaml",
        &PROVISION
            .replace("edge-3", "edge-4")
            .replace("/etc/smo/credentials/vim-password", "vim-password"),
    );
    write(
        dir.path(),
        "clusters/edge-5.yaml",
        &PROVISION
            .replace("edge-3", "edge-5")
            .replace("      mgmtNet: dmz-internal\n", ""),
    );
    let state = load_root(dir.path()).unwrap();
    let mut got: Vec<(&str, usize, &str)> = state
        .findings
        .iter()
        .map(|f| (f.file.as_str(), f.line, f.pointer.as_str()))
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        vec![
            (
                "clusters/edge-3.yaml",
                8,
                "/cluster/provision/nfvcl/masterFlavor/vcpu"
            ),
            (
                "clusters/edge-3.yaml",
                10,
                "/cluster/provision/nfvcl/workers"
            ),
            (
                "clusters/edge-4.yaml",
                5,
                "/cluster/provision/nfvcl/vim/passwordFile"
            ),
            (
                "clusters/edge-5.yaml",
                4,
                "/cluster/provision/nfvcl/mgmtNet"
            ),
        ]
    );
    assert!(state.clusters.is_empty());
}

/// Removal needs positive evidence: a cluster file that is present but
/// does not load names its cluster as broken (held), not as gone.
#[test]
fn cluster_files_that_do_not_load_are_reported_as_broken_not_gone() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "clusters/edge-3.yaml", PROVISION);
    // Not YAML.
    write(dir.path(), "clusters/bad-yaml.yaml", "cluster: [name: x\n");
    // A typo'd key makes the file invalid.
    write(
        dir.path(),
        "clusters/typo.yaml",
        &PROVISION
            .replace("edge-3", "typo")
            .replace("workers: 2", "wrokers: 2"),
    );
    // Emptied by a non-atomic save.
    write(dir.path(), "clusters/empty.yaml", "");
    // A dangling link: present, cannot be read.
    std::os::unix::fs::symlink(
        dir.path().join("nowhere.yaml"),
        dir.path().join("clusters/dangling.yaml"),
    )
    .unwrap();
    let state = load_root(dir.path()).unwrap();
    assert_eq!(state.clusters.keys().collect::<Vec<_>>(), ["edge-3"]);
    assert_eq!(
        state.broken_clusters.iter().collect::<Vec<_>>(),
        ["bad-yaml", "dangling", "empty", "typo"]
    );
    // Each is explained with its file.
    for name in ["bad-yaml", "empty", "typo"] {
        let file = format!("clusters/{name}.yaml");
        assert!(
            state
                .findings
                .iter()
                .any(|f| f.file == file && f.is_error()),
            "{file}: {:?}",
            state.findings
        );
    }
    // A file that is gone is neither loaded nor broken.
    fs::remove_file(dir.path().join("clusters/typo.yaml")).unwrap();
    let state = load_root(dir.path()).unwrap();
    assert!(!state.broken_clusters.contains("typo"));
}

/// 200 graphs in 4 projects, every service on a local chart (the checks
/// the cache must not skip) or an OCI one.
fn fleet(root: &Path) {
    for p in 0..4 {
        write(
            root,
            &format!("projects/p{p}/charts/app/Chart.yaml"),
            "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        );
        write(
            root,
            &format!("projects/p{p}/charts/app/templates/cm.yaml"),
            "kind: ConfigMap\n",
        );
    }
    for g in 0..200 {
        let text = graph(&format!("g{g}"))
            .service(&format!("g{g}-a"))
            .chart("charts/app")
            .service(&format!("g{g}-b"))
            .yaml();
        write(root, &format!("projects/p{}/g{g}.yaml", g % 4), &text);
    }
}

fn graph_ids(state: &smo::desired::DesiredState) -> Vec<String> {
    let mut ids: Vec<String> = state.valid_graphs().map(|g| g.id().to_owned()).collect();
    ids.sort();
    ids
}

#[test]
fn an_incremental_load_judges_only_what_changed_and_finds_what_a_fresh_load_finds() {
    use smo::desired::incremental::{LoadCache, LoadStats};
    use smo::desired::loader::load_root_cached;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fleet(root);
    let cache = LoadCache::default();
    let load = || load_root_cached(root, None, &cache).unwrap();
    let first = load();
    assert_eq!(
        cache.stats(),
        LoadStats {
            judged: 200,
            reused: 0
        }
    );
    assert_eq!(
        first.valid_graphs().count(),
        200,
        "{:?}",
        first.findings.first()
    );
    assert_eq!(load(), first, "nothing changed: the same state");
    assert_eq!(
        cache.stats(),
        LoadStats {
            judged: 0,
            reused: 200
        }
    );

    // One file edited: one file judged, and the state is a fresh load's.
    let edited = graph("g7")
        .service("g7-a")
        .cpu("large")
        .chart("charts/app")
        .service("g7-b")
        .yaml();
    write(root, "projects/p3/g7.yaml", &edited);
    let after = load();
    assert_eq!(
        cache.stats(),
        LoadStats {
            judged: 1,
            reused: 199
        }
    );
    assert_eq!(after, load_root(root).unwrap());

    // A duplicate identity introduced by an edit is caught on both files.
    write(
        root,
        "projects/p1/g9.yaml",
        &graph("g5").service("g9-a").yaml(),
    );
    let dup = load();
    assert_eq!(
        cache.stats(),
        LoadStats {
            judged: 1,
            reused: 199
        }
    );
    for file in ["projects/p1/g5.yaml", "projects/p1/g9.yaml"] {
        assert!(
            dup.findings
                .iter()
                .any(|f| f.file == file && f.is_error() && f.message.contains("g5")),
            "no duplicate error on {file}: {:?}",
            dup.findings
                .iter()
                .filter(|f| f.is_error())
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(dup, load_root(root).unwrap());
    write(
        root,
        "projects/p1/g9.yaml",
        &graph("g9").service("g9-a").yaml(),
    );

    // A removed file removes its graph; a broken one declares none and is
    // reported (the daemon holds its graph); fixed, it is judged again.
    fs::remove_file(root.join("projects/p2/g10.yaml")).unwrap();
    write(root, "projects/p2/g14.yaml", "hdaGraph: [unclosed\n");
    let broken = load();
    let ids = graph_ids(&broken);
    assert!(!ids.contains(&"g10".to_owned()) && !ids.contains(&"g14".to_owned()));
    assert_eq!(ids.len(), 198);
    assert!(
        broken
            .findings
            .iter()
            .any(|f| f.file == "projects/p2/g14.yaml" && f.is_error())
    );
    assert_eq!(broken, load_root(root).unwrap());
    // The daemon logs a finding when it appears, not on every load.
    let _ = cache.new_findings(&dup.findings);
    assert!(cache.new_findings(&dup.findings).is_empty(), "said once");
    let fresh = cache.new_findings(&broken.findings);
    assert!(
        fresh.iter().any(|f| f.file == "projects/p2/g14.yaml"),
        "{fresh:?}"
    );

    // A chart a cached descriptor names goes bad: the descriptor is judged
    // again, and fails as it would fresh.
    fs::remove_file(root.join("projects/p0/charts/app/Chart.yaml")).unwrap();
    let chartless = load();
    assert_eq!(chartless, load_root(root).unwrap());
    assert!(
        chartless
            .findings
            .iter()
            .any(|f| f.file == "projects/p0/g0.yaml" && f.is_error()),
        "the chart's loss is reported on its users"
    );
    assert_eq!(chartless.valid_graphs().count(), 198 - 50);
}
