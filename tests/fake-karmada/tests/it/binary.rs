//! The `fake-karmada` binary: flags, printed address, kubeconfig, inventory.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

#[tokio::test]
async fn binary_serves_the_inventory_and_writes_a_kubeconfig() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inventory = dir.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        "clusters:\n  - name: brussels-edge\n    ready: true\n    cpu: {allocatable: \"8\", allocated: \"2500m\"}\n    memory: {allocatable: \"32Gi\", allocated: \"4Gi\"}\n    gpu: {allocatable: \"1\", allocated: \"0\"}\n",
    )
    .expect("write inventory");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-karmada"))
        .args(["--listen", "127.0.0.1:0", "--write-kubeconfig"])
        .arg(&kubeconfig)
        .arg("--inventory")
        .arg(&inventory)
        .arg("--simulate-members")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reads address");
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "printed {url:?}");
    let kc_text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig written");
    assert!(kc_text.contains(&url));

    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(cfg).expect("client");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.karmada.io", "v1alpha1", "Cluster"),
        "clusters",
    );
    let clusters: Api<DynamicObject> = Api::all_with(client, &ar);
    let result = clusters.list(&ListParams::default()).await;
    let _ = child.kill();
    let _ = child.wait();
    let list = result.expect("list clusters");
    assert_eq!(list.items.len(), 1);
    assert_eq!(
        list.items[0].data["status"]["resourceSummary"]["allocated"]["cpu"],
        "2500m"
    );

    // Bad flags exit with status 2.
    let status = Command::new(env!("CARGO_BIN_EXE_fake-karmada"))
        .arg("--bogus")
        .stderr(Stdio::null())
        .status()
        .expect("runs");
    assert_eq!(status.code(), Some(2));
}
