//! Signed installs (issue 19): an author makes a key and signs a build; an operator who
//! trusts that key installs it, pinned; anything unsigned, altered, signed by another key
//! or named like a built-in is refused, and `plugins verify` finds a file swapped later.

use std::path::Path;

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::harness;

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
