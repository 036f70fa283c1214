//! The deployment files (`deploy/`, issue 25): every command and flag they give the binary
//! exists in it, every config they install loads, the credentials they hand over are the
//! files the config reads, and the systemd units pass `systemd-analyze verify`.

use std::path::{Path, PathBuf};

use infragraph_tests::cli::{Work, binary, run};

fn deploy(file: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, text)
}

/// `args` as the binary parses them: `--help` after them makes clap check each one (and
/// its value) and stop before running anything.
fn parses(w: &Work, args: &[String], env: &[(&str, &str)]) {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.push("--help");
    let mut cmd = w.cmd(&all);
    cmd.envs(env.iter().copied());
    let ran = run(&mut cmd);
    assert_eq!(ran.code, 0, "{all:?}: {}{}", ran.stdout, ran.stderr);
}

/// The config loads, and names each connection it should.
fn loads(w: &Work, config: &Path, connections: &[&str]) {
    let c = config.to_str().unwrap();
    let ran = run(&mut w.cmd(&["--config", c, "connections", "list"]));
    assert_eq!(ran.code, 0, "{c}: {}{}", ran.stdout, ran.stderr);
    for name in connections {
        assert!(ran.stdout.contains(name), "{name} in {c}: {}", ran.stdout);
    }
}

/// The paths of the `{ file = "..." }` secret sources of a config.
fn secret_files(toml: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"\{\s*file\s*=\s*"([^"]+)"\s*\}"#).unwrap();
    re.captures_iter(toml).map(|c| c[1].to_string()).collect()
}

#[test]
fn the_kubernetes_cronjob_runs_commands_the_binary_has_with_its_config_and_secrets() {
    let w = Work::new("deploy-k8s");
    let (config, toml) = deploy("kubernetes/infragraph.toml");
    loads(
        &w,
        &config,
        &["scaleway-prod", "scaleway-staging", "azure-corp"],
    );
    let (_, yaml) = deploy("kubernetes/cronjob.yaml");
    let args_line = yaml
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("args:"))
        .expect("the container's args");
    let args: Vec<String> = serde_json::from_str(args_line.trim()).expect("args as a flow list");
    // An Indexed Job's pod: the Job controller sets the index.
    parses(&w, &args, &[("JOB_COMPLETION_INDEX", "2")]);
    // The config it reads is the ConfigMap's file, where the pod mounts it.
    let at = args.iter().position(|a| a == "--config").expect("--config");
    assert_eq!(args[at + 1], "/etc/infragraph/infragraph.toml");
    assert!(yaml.contains("mountPath: /etc/infragraph,"), "{yaml}");
    // Every secret the config reads is in the mounted Secret's directory.
    let files = secret_files(&toml);
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert!(f.starts_with("/run/secrets/infragraph/"), "{f}");
    }
    assert!(
        yaml.contains("mountPath: /run/secrets/infragraph,"),
        "{yaml}"
    );
    // The pod runs as the image's user, not root.
    assert!(yaml.contains("runAsUser: 65532"));
}

#[test]
fn the_systemd_units_run_commands_the_binary_has_and_hand_it_its_credentials() {
    let w = Work::new("deploy-systemd");
    let (config, toml) = deploy("systemd/infragraph.toml");
    loads(&w, &config, &["scaleway-prod", "azure-corp"]);
    let (_, unit) = deploy("systemd/infragraph.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/infragraph"));
    let args: Vec<String> = words.map(str::to_string).collect();
    parses(&w, &args, &[]);
    let at = args.iter().position(|a| a == "--config").expect("--config");
    assert_eq!(args[at + 1], "/etc/infragraph/infragraph.toml");
    // Each credential the config reads is one systemd hands the service, and the other
    // way round.
    let loaded: Vec<String> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("LoadCredential="))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    let mut read: Vec<String> = secret_files(&toml)
        .iter()
        .map(|f| {
            f.strip_prefix("/run/credentials/infragraph.service/")
                .unwrap_or_else(|| panic!("{f} is not a credential of the service"))
                .to_string()
        })
        .collect();
    read.sort();
    let mut loaded_sorted = loaded.clone();
    loaded_sorted.sort();
    assert_eq!(read, loaded_sorted);

    // systemd's own check, where systemd is installed: the units as installed, with the
    // binary at the path ExecStart names replaced by this build's.
    let Ok(analyze) = which("systemd-analyze") else {
        return;
    };
    let dir = w.0.join("units");
    std::fs::create_dir_all(&dir).unwrap();
    let bin = binary();
    std::fs::write(
        dir.join("infragraph.service"),
        unit.replace("/usr/local/bin/infragraph", bin.to_str().unwrap()),
    )
    .unwrap();
    let (_, timer) = deploy("systemd/infragraph.timer");
    std::fs::write(dir.join("infragraph.timer"), timer).unwrap();
    let ran = run(std::process::Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(dir.join("infragraph.service"))
        .arg(dir.join("infragraph.timer")));
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.trim().is_empty(),
        "systemd-analyze verify warns:\n{}",
        ran.stderr
    );
}

fn which(cmd: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
        .ok_or(())
}
