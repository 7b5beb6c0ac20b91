//! The fixture chart pushed to a real OCI registry (Debian's
//! `docker-registry`, filesystem storage, loopback) and installed from it.

use fake_karmada::testing::OciRegistry;

use crate::support::{self, Helm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_installs_from_a_real_oci_registry() {
    let Some(helm_bin) = support::tool("SMO_HELM") else {
        return;
    };
    let Some(reg_bin) = support::tool("SMO_REGISTRY") else {
        return;
    };
    let registry = tokio::task::spawn_blocking(move || OciRegistry::start(&reg_bin))
        .await
        .expect("registry thread");
    let fake = support::start().await;
    let helm = Helm::new(helm_bin, &fake);
    let pkg_dir = helm.home().join("pkg");
    let chart = support::chart_dir();
    helm.run(&[
        "package",
        chart.to_str().expect("utf-8"),
        "-d",
        pkg_dir.to_str().expect("utf-8"),
    ])
    .await;
    let tgz = pkg_dir.join("web-0.1.0.tgz");
    assert!(tgz.is_file(), "helm package wrote {}", tgz.display());
    let repo = format!("oci://{}/charts", registry.addr);
    helm.run(&["push", tgz.to_str().expect("utf-8"), &repo, "--plain-http"])
        .await;

    let chart_ref = format!("{repo}/web");
    helm.run(&[
        "upgrade",
        "--install",
        "from-oci",
        &chart_ref,
        "--version",
        "0.1.0",
        "--plain-http",
        "-n",
        "oci",
        "--create-namespace",
        "--set",
        "replicas=2",
    ])
    .await;
    let d = fake
        .get_object("apps/v1", "Deployment", Some("oci"), "from-oci")
        .expect("Deployment from the OCI chart");
    assert_eq!(d["spec"]["replicas"], 2);
    let ls = helm.run(&["ls", "-n", "oci", "-o", "json"]).await;
    let ls: serde_json::Value = serde_json::from_str(&ls).expect("json");
    assert_eq!(ls[0]["chart"], "web-0.1.0");

    // Helm 3.18 installs the same artifact.
    if let Some(helm3_bin) = support::tool("SMO_HELM3") {
        let helm3 = Helm::new(helm3_bin, &fake);
        helm3
            .run(&[
                "install",
                "from-oci-3",
                &chart_ref,
                "--version",
                "0.1.0",
                "--plain-http",
                "-n",
                "oci3",
                "--create-namespace",
            ])
            .await;
        assert!(
            fake.get_object("apps/v1", "Deployment", Some("oci3"), "from-oci-3")
                .is_some()
        );
    }

    // A chart that is not in the registry fails cleanly.
    let out = helm
        .try_run(&[
            "template",
            "x",
            &format!("{repo}/absent"),
            "--version",
            "9.9.9",
            "--plain-http",
        ])
        .await;
    assert!(!out.ok, "pulling a missing chart must fail");
    drop(registry);
}
