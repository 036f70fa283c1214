//! The README's examples, run: its quick start as written, against the simulators the
//! quick start itself starts, and every other `infragraph` command it shows parsed by the
//! binary (they need real accounts or a server). So the README cannot drift from the
//! binary: a flag renamed, a command removed, an example that no longer works fails here.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use infragraph_tests::cli::{Ran, Work, binary, infragraph, run};

/// The shell blocks of a Markdown document: (heading above, lines).
fn shell_blocks(markdown: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut open: Option<Vec<String>> = None;
    for line in markdown.lines() {
        match &mut open {
            Some(lines) if line.starts_with("```") => {
                blocks.push((heading.clone(), std::mem::take(lines)));
                open = None;
            }
            Some(lines) => lines.push(line.to_string()),
            None if line.starts_with("```sh") => open = Some(Vec::new()),
            None if line.starts_with('#') => heading = line.trim_start_matches('#').trim().into(),
            None => {}
        }
    }
    blocks
}

/// A command line without its trailing comment (two or more spaces, then `#`).
fn command(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let cut = line
        .match_indices("  #")
        .next()
        .map_or(line, |(at, _)| &line[..at]);
    Some(cut.trim().to_string())
}

/// The `infragraph ...` part of a line (after `VAR=... ` assignments or `env $(...) `),
/// if the line runs infragraph.
fn infragraph_args(line: &str) -> Option<&str> {
    let at = line.find("infragraph ")?;
    let before = &line[..at];
    let prefix_ok = before.is_empty()
        || before.starts_with("env ")
        || before.split_whitespace().all(|w| w.contains('='));
    prefix_ok.then(|| &line[at + "infragraph ".len()..])
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(&path).expect("README.md")
}

/// `line` run by `sh` in the work directory, with the test build's `infragraph` first on
/// the PATH (what the quick start's `export PATH=...` does).
fn sh(w: &Work, line: &str) -> Ran {
    let bin_dir = binary().parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cmd = infragraph(&w.0, &[]);
    let mut shell = Command::new("sh");
    shell
        .current_dir(&w.0)
        .arg("-c")
        .arg(line)
        .env("PATH", path);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => shell.env(k, v),
            None => shell.env_remove(k),
        };
    }
    run(&mut shell)
}

/// The simulators binary, started as the quick start does, until dropped.
struct Simulators(Child);

impl Simulators {
    fn start(w: &Work) -> Simulators {
        let child = Command::new(env!("CARGO_BIN_EXE_simulators"))
            .current_dir(&w.0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the simulators start");
        let env = w.0.join("simulators.env");
        let started = Instant::now();
        while !env.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the simulators wrote no simulators.env"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // It appears whole (renamed into place) once every simulator listens.
        Simulators(child)
    }
}

impl Drop for Simulators {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The subshell line the simulators print sources the env file they wrote, whether it was
/// named by an absolute path or by a bare name in the current folder.
#[test]
fn the_simulators_subshell_line_finds_their_env_file() {
    let w = Work::new("simulators-subshell");
    let absolute = w.0.join("absolute.env").to_string_lossy().into_owned();
    for file in [absolute.as_str(), "bare.env"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_simulators"))
            .arg(file)
            .current_dir(&w.0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the simulators start");
        let out = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let line = std::io::BufRead::lines(out)
            .map(|l| l.expect("a line of the simulators' output"))
            .find(|l| l.starts_with("(set -a;"))
            .expect("the simulators print a subshell line");
        let script = line.replace("exec \"${SHELL:-sh}\"", "echo \"$ACME_API_URL\"");
        let ran = Command::new("sh")
            .args(["-c", &script])
            .current_dir(&w.0)
            .output()
            .expect("sh runs");
        let _ = child.kill();
        let _ = child.wait();
        let said = String::from_utf8_lossy(&ran.stdout);
        assert!(
            ran.status.success() && said.starts_with("http://127.0.0.1:"),
            "{file}: `{line}` gave {said:?}, {}",
            String::from_utf8_lossy(&ran.stderr)
        );
    }
}

#[test]
fn the_quick_start_runs_as_written() {
    let blocks = shell_blocks(&readme());
    let (_, quick) = blocks
        .iter()
        .find(|(heading, _)| heading == "Quick start")
        .expect("the README has a Quick start with a shell block");
    let w = Work::new("readme-quick-start");
    let mut sims = None;
    let mut ran = 0;
    for line in quick.iter().filter_map(|l| command(l)) {
        // What builds the binaries the test already runs, and puts them on the PATH.
        if ["cargo xtask build", "cargo build -p infragraph"].contains(&line.as_str())
            || line.starts_with("export PATH=")
        {
            continue;
        }
        if line == "cargo run -p infragraph-tests --bin simulators" {
            sims = Some(Simulators::start(&w));
            continue;
        }
        assert!(
            infragraph_args(&line).is_some(),
            "the quick start runs only infragraph once built; what is {line:?}?"
        );
        let out = sh(&w, &line);
        assert_eq!(
            out.code, 0,
            "README quick start: `{line}` failed:\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        assert!(
            !out.stdout.trim().is_empty() || line.contains(" -o "),
            "README quick start: `{line}` printed nothing"
        );
        // The quick start promises answers, not just exit codes.
        if line.contains("--type CAN_ACCESS") {
            assert!(out.stdout.contains("CAN_ACCESS"), "{}", out.stdout);
        }
        if line.contains("sync ") {
            let statuses: Vec<&str> = out
                .stdout
                .lines()
                .skip(1)
                .take_while(|l| !l.contains(':'))
                .filter_map(|l| l.split_whitespace().nth(1))
                .collect();
            assert_eq!(statuses, ["succeeded"; 5], "{}", out.stdout);
        }
        ran += 1;
    }
    assert!(sims.is_some(), "the quick start starts the simulators");
    assert!(ran >= 10, "the quick start's commands ran ({ran})");
    assert!(
        w.0.join("graph.jsonl")
            .metadata()
            .is_ok_and(|m| m.len() > 0),
        "the export the quick start ends with"
    );
}

#[test]
fn every_command_the_readme_shows_parses() {
    let w = Work::new("readme-parses");
    let mut checked = 0;
    for (heading, lines) in shell_blocks(&readme()) {
        for line in lines.iter().filter_map(|l| command(l)) {
            let Some(args) = infragraph_args(&line) else {
                continue;
            };
            // `[--flag value]` marks an optional part: check it as given.
            let args = args.replace(['[', ']'], "");
            let mut words: Vec<&str> = args
                .split(['|', '>'])
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            words.push("--help");
            let ran = run(&mut infragraph(&w.0, &words));
            assert_eq!(
                ran.code, 0,
                "README ({heading}): `{line}` does not parse: {}",
                ran.stderr
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 25,
        "the README's commands were found ({checked})"
    );
}
