//! Signed installs (issue 19): an author makes a key and signs a build; an operator who
//! trusts that key installs it, pinned; anything unsigned, altered, signed by another key
//! or named like a built-in is refused, and `plugins verify` finds a file swapped later.

use std::path::Path;

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::harness;
use infragraph_tests::registry;
use infragraph_tests::sim::FileSite;

fn ok(ran: &Ran) {
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
}

fn refused(ran: &Ran, why: &str) {
    assert_ne!(ran.code, 0, "{}", ran.stdout);
    let said = format!("{}{}", ran.stdout, ran.stderr);
    assert!(said.contains(why), "{why:?} in: {said}");
}

/// The same component with a custom section appended: another build, other bytes.
fn altered(wasm: &[u8]) -> Vec<u8> {
    let mut out = wasm.to_vec();
    out.extend_from_slice(&[0, 6, 5, b'o', b't', b'h', b'e', b'r']);
    out
}

/// The public key of a `plugin keygen` directory (the second line of its .pub file).
fn public_key(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("infragraph.pub")).unwrap();
    text.lines()
        .nth(1)
        .expect("a minisign public key file")
        .to_string()
}

#[test]
fn a_signed_plugin_installs_pinned_and_nothing_else_does() {
    let w = Work::new("trust");
    let cmd = |args: &[&str]| run(&mut w.cmd(args));
    let author = w.0.join("author");
    std::fs::create_dir_all(&author).unwrap();
    let built = std::fs::read(harness::guest("misbehave")).unwrap();
    let wasm = author.join("misbehave.wasm");
    std::fs::write(&wasm, &built).unwrap();
    let (wasm_s, keys) = (wasm.to_str().unwrap(), w.0.join("keys"));

    // The author's side.
    let made = cmd(&["plugin", "keygen", "--dir", keys.to_str().unwrap()]);
    ok(&made);
    let pk = public_key(&keys);
    assert!(made.stdout.contains(&pk), "{}", made.stdout);
    let key = keys.join("infragraph.key");
    ok(&cmd(&[
        "plugin",
        "sign",
        wasm_s,
        "--key",
        key.to_str().unwrap(),
    ]));
    assert!(author.join("misbehave.wasm.minisig").is_file());

    // The operator trusts that key.
    let config = w.0.join("infragraph.toml");
    std::fs::write(
        &config,
        format!(
            "# the operator's\n[trust]\nkeys = [\"{pk}\"]\n\n[plugins.misbehave]\nmode = \"ok\"\n"
        ),
    )
    .unwrap();
    let installed = cmd(&["plugins", "install", wasm_s]);
    ok(&installed);
    assert!(
        installed.stdout.contains("signed by trusted key"),
        "{}",
        installed.stdout
    );
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&built));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&format!("sha256 = \"{sha}\"")) && text.contains("# the operator's"),
        "{text}"
    );
    let placed = w.0.join("data/infragraph/plugins/misbehave.wasm");
    assert_eq!(std::fs::read(&placed).unwrap(), built);
    ok(&cmd(&["sync", "misbehave", "--store", &w.store()]));
    ok(&cmd(&["plugins", "verify"]));

    // Swapped behind the operator's back: verify says so, and it does not run.
    std::fs::write(&placed, altered(&built)).unwrap();
    let checked = cmd(&["plugins", "verify"]);
    assert_eq!(checked.code, 1, "{}", checked.stdout);
    assert!(
        checked.stdout.contains(&format!("the config pins {sha}")),
        "{}",
        checked.stdout
    );
    refused(&cmd(&["sync", "misbehave", "--store", &w.store()]), &sha);

    // Removed: the file, its signature and its pin; the rest of the config stays.
    ok(&cmd(&["plugins", "remove", "misbehave"]));
    assert!(
        !placed.exists()
            && !w
                .0
                .join("data/infragraph/plugins/misbehave.wasm.minisig")
                .exists()
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        !text.contains("sha256") && text.contains("mode = \"ok\""),
        "{text}"
    );

    // Bytes that are not the signed ones.
    let other = author.join("other.wasm");
    std::fs::write(&other, altered(&built)).unwrap();
    std::fs::copy(
        author.join("misbehave.wasm.minisig"),
        author.join("other.wasm.minisig"),
    )
    .unwrap();
    refused(
        &cmd(&["plugins", "install", other.to_str().unwrap()]),
        "no trusted key made this signature",
    );
    // A key the operator does not trust.
    let stranger = w.0.join("stranger");
    ok(&cmd(&[
        "plugin",
        "keygen",
        "--dir",
        stranger.to_str().unwrap(),
    ]));
    let by_stranger = stranger.join("infragraph.key");
    ok(&cmd(&[
        "plugin",
        "sign",
        other.to_str().unwrap(),
        "--key",
        by_stranger.to_str().unwrap(),
    ]));
    refused(
        &cmd(&["plugins", "install", other.to_str().unwrap()]),
        "no trusted key made this signature",
    );
    // No signature at all: refused, unless the operator says so (and it is pinned).
    let unsigned = author.join("unsigned.wasm");
    std::fs::write(&unsigned, &built).unwrap();
    refused(
        &cmd(&["plugins", "install", unsigned.to_str().unwrap()]),
        "--allow-unsigned",
    );
    let took = cmd(&[
        "plugins",
        "install",
        unsigned.to_str().unwrap(),
        "--allow-unsigned",
    ]);
    ok(&took);
    assert!(took.stdout.contains("unsigned"), "{}", took.stdout);
    assert!(std::fs::read_to_string(&config).unwrap().contains(&sha));

    // A signed build that takes a built-in's name.
    let impostor = author.join("scaleway.wasm");
    std::fs::copy(harness::plugin_dir().join("scaleway.wasm"), &impostor).unwrap();
    std::fs::write(&impostor, altered(&std::fs::read(&impostor).unwrap())).unwrap();
    ok(&cmd(&[
        "plugin",
        "sign",
        impostor.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]));
    refused(
        &cmd(&["plugins", "install", impostor.to_str().unwrap()]),
        "built-in plugin",
    );
    assert!(!w.0.join("data/infragraph/plugins/scaleway.wasm").exists());
}

/// An author's key pair and a signed build of the `misbehave` guest in `w`; returns the
/// build, its path and the public key.
fn signed_build(w: &Work, dir: &str) -> (Vec<u8>, std::path::PathBuf, String) {
    let author = w.0.join(dir);
    std::fs::create_dir_all(&author).unwrap();
    let built = std::fs::read(harness::guest("misbehave")).unwrap();
    let wasm = author.join("misbehave.wasm");
    std::fs::write(&wasm, &built).unwrap();
    let keys = author.join("keys");
    ok(&run(&mut w.cmd(&[
        "plugin",
        "keygen",
        "--dir",
        keys.to_str().unwrap(),
    ])));
    let key = keys.join("infragraph.key");
    ok(&run(&mut w.cmd(&[
        "plugin",
        "sign",
        wasm.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ])));
    (built, wasm, public_key(&keys))
}

/// `plugins install` succeeded with a trusted signature and placed exactly `built` in
/// `operator`'s plugin directory.
fn signed_and_placed(installed: &Ran, operator: &Work, built: &[u8]) {
    ok(installed);
    assert!(
        installed.stdout.contains("signed by trusted key"),
        "{}",
        installed.stdout
    );
    assert_eq!(
        std::fs::read(operator.0.join("data/infragraph/plugins/misbehave.wasm")).unwrap(),
        built
    );
}

/// A GET of the test registry's API.
fn registry_get(path: &str, accept: &str) -> (u16, Vec<u8>) {
    let url = format!("http://{}{path}", registry::address());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(&url)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    })
}

/// Pushes a manifest whose one layer is `layer` (of `layer_type`) under `repo:tag`,
/// straight through the registry's HTTP API: an artifact infragraph did not make.
fn registry_push(repo: &str, tag: &str, config_type: &str, layer_type: &str, layer: &[u8]) {
    let base = format!("http://{}/v2/{repo}", registry::address());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let mut descriptors = Vec::new();
        for blob in [b"{}".as_slice(), layer] {
            let digest = format!(
                "sha256:{}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(blob))
            );
            let started = c
                .post(format!("{base}/blobs/uploads/"))
                .send()
                .await
                .unwrap();
            assert_eq!(started.status().as_u16(), 202);
            let location = started.headers()["location"].to_str().unwrap().to_string();
            let sep = if location.contains('?') { '&' } else { '?' };
            let put = c
                .put(format!("{location}{sep}digest={digest}"))
                .header("content-type", "application/octet-stream")
                .body(blob.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(put.status().as_u16(), 201, "{}", put.text().await.unwrap());
            descriptors.push((digest, blob.len()));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": config_type, "digest": descriptors[0].0, "size": descriptors[0].1},
            "layers": [{"mediaType": layer_type, "digest": descriptors[1].0, "size": descriptors[1].1}],
        });
        let put = c
            .put(format!("{base}/manifests/{tag}"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(serde_json::to_vec(&manifest).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status().as_u16(), 201, "{}", put.text().await.unwrap());
    });
}

#[test]
fn a_plugin_published_to_a_registry_installs_by_its_oci_reference() {
    let w = Work::new("trust-oci");
    let cmd = |args: &[&str]| run(&mut w.cmd(args));
    let (built, wasm, pk) = signed_build(&w, "author");
    let repo = format!("acme-{}/misbehave", std::process::id());
    let reference = format!("oci://{}/{repo}:1.0.0", registry::address());

    let published = cmd(&["plugin", "publish", wasm.to_str().unwrap(), &reference]);
    ok(&published);
    assert!(
        published.stdout.contains(".minisig"),
        "{}",
        published.stdout
    );
    // The registry holds a WebAssembly artifact as wkg and oras lay it out: the wasm
    // config, one application/wasm layer with these very bytes.
    let (status, body) = registry_get(
        &format!("/v2/{repo}/manifests/1.0.0"),
        "application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(status, 200);
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    let (status, layer) = registry_get(
        &format!("/v2/{repo}/blobs/{}", layers[0]["digest"].as_str().unwrap()),
        "*/*",
    );
    assert_eq!((status, layer == built), (200, true));
    let (_, config) = registry_get(
        &format!(
            "/v2/{repo}/blobs/{}",
            manifest["config"]["digest"].as_str().unwrap()
        ),
        "*/*",
    );
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(
        (&config["architecture"], &config["os"]),
        (&"wasm".into(), &"wasip2".into())
    );
    assert!(
        config["component"]["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e
                .as_str()
                .unwrap()
                .starts_with("infragraph:plugin/provider@")),
        "{config}"
    );

    // An operator who does not trust the author yet.
    let operator = Work::new("trust-oci-operator");
    let op = |args: &[&str]| run(&mut operator.cmd(args));
    refused(
        &op(&["plugins", "install", &reference]),
        "no key is trusted",
    );
    assert!(
        !operator
            .0
            .join("data/infragraph/plugins/misbehave.wasm")
            .exists()
    );
    let config = operator.config(&format!(
        "[trust]\nkeys = [\"{pk}\"]\n\n[plugins.misbehave]\nmode = \"ok\"\n"
    ));
    signed_and_placed(&op(&["plugins", "install", &reference]), &operator, &built);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&built));
    assert!(std::fs::read_to_string(&config).unwrap().contains(&sha));
    ok(&op(&["sync", "misbehave", "--store", &operator.store()]));
    ok(&op(&["plugins", "verify"]));

    // The tag moved to another build, published without a signature: the old signature
    // does not follow it (it is tagged by the manifest it signs).
    let other = w.0.join("author/other.wasm");
    std::fs::write(&other, altered(&built)).unwrap();
    ok(&cmd(&[
        "plugin",
        "publish",
        other.to_str().unwrap(),
        &reference,
    ]));
    refused(&op(&["plugins", "install", &reference]), "has no signature");
    // A stranger's signature on it.
    let (_, stranger_wasm, _) = signed_build(&w, "stranger");
    std::fs::write(&stranger_wasm, altered(&built)).unwrap();
    let stranger_key = w.0.join("stranger/keys/infragraph.key");
    ok(&cmd(&[
        "plugin",
        "sign",
        stranger_wasm.to_str().unwrap(),
        "--key",
        stranger_key.to_str().unwrap(),
    ]));
    ok(&cmd(&[
        "plugin",
        "publish",
        stranger_wasm.to_str().unwrap(),
        &reference,
    ]));
    refused(
        &op(&["plugins", "install", &reference]),
        "no trusted key made this signature",
    );
    // The first install is untouched by the refusals.
    ok(&op(&["plugins", "verify"]));

    // Not a WebAssembly artifact, a tag that does not exist, a registry that is not one.
    let image_repo = format!("acme-{}/image", std::process::id());
    registry_push(
        &image_repo,
        "1",
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar",
        b"not a plugin",
    );
    let image = format!("oci://{}/{image_repo}:1", registry::address());
    refused(
        &op(&["plugins", "install", &image]),
        "is not a WebAssembly artifact",
    );
    let tarred = format!("acme-{}/tarred", std::process::id());
    registry_push(
        &tarred,
        "1",
        "application/vnd.wasm.config.v0+json",
        "application/vnd.oci.image.layer.v1.tar",
        &built,
    );
    refused(
        &op(&[
            "plugins",
            "install",
            &format!("oci://{}/{tarred}:1", registry::address()),
        ]),
        "exactly one layer of type application/wasm",
    );
    refused(
        &op(&[
            "plugins",
            "install",
            &format!("oci://{}/{repo}:9.9.9", registry::address()),
        ]),
        "no such repository or tag",
    );
    refused(
        &op(&["plugins", "install", "oci://misbehave:1"]),
        "names no registry",
    );
}

#[test]
fn a_plugin_installs_from_a_url_with_its_signature_beside_it() {
    let w = Work::new("trust-url");
    let (built, wasm, pk) = signed_build(&w, "site");
    std::fs::write(w.0.join("site/unsigned.wasm"), &built).unwrap();
    let site = FileSite::start(w.0.join("site"));
    let operator = Work::new("trust-url-operator");
    let op = |args: &[&str]| run(&mut operator.cmd(args));
    operator.config(&format!("[trust]\nkeys = [\"{pk}\"]\n"));

    signed_and_placed(
        &op(&["plugins", "install", &site.url("misbehave.wasm")]),
        &operator,
        &built,
    );
    assert!(
        site.requests()
            .iter()
            .any(|r| r.contains("/misbehave.wasm.minisig")),
        "{:?}",
        site.requests()
    );
    refused(
        &op(&["plugins", "install", &site.url("unsigned.wasm")]),
        "unsigned.wasm.minisig",
    );
    refused(
        &op(&["plugins", "install", &site.url("gone.wasm")]),
        "HTTP 404",
    );
    // A signature named on the command line is used instead of the site's.
    let sig = wasm.with_extension("wasm.minisig");
    ok(&op(&[
        "plugins",
        "install",
        &site.url("unsigned.wasm"),
        "--signature",
        sig.to_str().unwrap(),
    ]));
    refused(
        &op(&[
            "plugins",
            "install",
            "http://plugins.example.com/misbehave.wasm",
        ]),
        "over https",
    );
}
