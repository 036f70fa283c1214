//! What people see, pinned: the output of each command (tables, CSV, JSON, errors) as
//! snapshots under `snapshots/`, so a change to it is deliberate. A changed output fails
//! here with a diff; when the change is meant, accept it with
//! `INSTA_UPDATE=always cargo xtask test -E 'test(/snapshots/)'` and review the `.snap`
//! files in the commit. Volatile parts (times, paths, hashes, update tags) are redacted.

use infragraph_tests::cli::{Ran, Work, run};
use infragraph_tests::harness;
use infragraph_tests::sim::{AcmeData, AcmeSim};

/// Tables are fitted to this many columns, as on a terminal that wide.
const COLUMNS: &str = "80";

struct Shot<'a> {
    w: &'a Work,
    sim: &'a AcmeSim,
}

impl Shot<'_> {
    /// `infragraph <args>` against the simulator, as a snapshot: exit code, stdout and
    /// stderr (at warn level, so info log lines with their times stay out).
    fn ran(&self, args: &[&str]) -> String {
        self.ran_with(args, COLUMNS)
    }

    fn ran_with(&self, args: &[&str], columns: &str) -> String {
        let mut cmd = self.w.cmd(args);
        cmd.env("ACME_API_URL", self.sim.url())
            .env("ACME_TENANT", AcmeData::TENANT)
            .env("ACME_API_TOKEN", AcmeSim::TOKEN)
            .env("COLUMNS", columns)
            .env("INFRAGRAPH_LOG", "warn");
        show(args, &run(&mut cmd))
    }
}

fn show(args: &[&str], ran: &Ran) -> String {
    let mut s = format!("$ infragraph {}\nexit {}\n", args.join(" "), ran.code);
    if !ran.stdout.is_empty() {
        s.push_str(&format!("--- stdout\n{}", ran.stdout));
    }
    if !ran.stderr.is_empty() {
        s.push_str(&format!("--- stderr\n{}", ran.stderr));
    }
    s
}

/// The redactions every snapshot gets.
fn settings(w: &Work) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(&regex::escape(&w.0.to_string_lossy()), "[WORK]");
    s.add_filter(
        &regex::escape(&harness::plugin_dir().to_string_lossy()),
        "[PLUGINS]",
    );
    // Where the binary writes out the plugins it carries: the test cache, then the digest
    // of the set, which changes with every plugin build.
    s.add_filter(r"/[^\s]*/compiled/embedded/[0-9a-f]{16}", "[EMBEDDED]");
    let bin = infragraph_tests::cli::binary();
    s.add_filter(
        &regex::escape(&bin.parent().expect("bin dir").to_string_lossy()),
        "[BIN]",
    );
    s.add_filter(r"\b[0-9a-f]{64}\b", "[SHA256]");
    s.add_filter(r"\b[0-9a-f]{16}\b", "[SHA256/16]");
    // Times of runs (this year or later), not the simulator's fixed ones (2024).
    s.add_filter(
        r"\b20(2[5-9]|[3-9]\d)-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z",
        "[NOW]",
    );
    s.add_filter(r"\b\d+\.\ds\b", "[SECS]");
    s.add_filter(r#""(firstseen|lastupdated)": \d+"#, r#""$1": [TAG]"#);
    s.add_filter(r"http://127\.0\.0\.1:\d+", "[SIM]");
    s
}

#[test]
fn the_output_of_every_command_is_pinned() {
    let w = Work::new("snapshots");
    let sim = AcmeSim::start(AcmeData::sample(10, 3));
    let shot = Shot { w: &w, sim: &sim };
    let store = w.store();
    let s = store.as_str();
    settings(&w).bind(|| {
        // Tables, as a person sees them.
        insta::assert_snapshot!("sync", shot.ran(&["sync", "example", "--store", s]));
        insta::assert_snapshot!("runs", shot.ran(&["runs", "--store", s]));
        insta::assert_snapshot!(
            "query_nodes",
            shot.ran(&["query", "nodes", "AcmeUser", "--limit", "4", "--store", s])
        );
        insta::assert_snapshot!(
            "query_nodes_narrow",
            shot.ran_with(
                &["query", "nodes", "AcmeUser", "--limit", "2", "--store", s],
                "40"
            )
        );
        insta::assert_snapshot!(
            "query_nodes_wide",
            shot.ran_with(
                &[
                    "query", "nodes", "AcmeUser", "--limit", "2", "--wide", "--store", s
                ],
                "40"
            )
        );
        insta::assert_snapshot!(
            "query_neighbours",
            shot.ran(&["query", "neighbours", "AcmeUser", "user-0003", "--store", s])
        );
        insta::assert_snapshot!(
            "query_path",
            shot.ran(&[
                "query",
                "path",
                "AcmeUser",
                "user-0003",
                "AcmeGroup",
                "group-000",
                "--store",
                s
            ])
        );
        insta::assert_snapshot!(
            "connections_list",
            shot.ran(&["connections", "list", "--store", s])
        );
        insta::assert_snapshot!("plugins_list", shot.ran(&["plugins", "list", "--wide"]));
        insta::assert_snapshot!(
            "plugins_inspect",
            shot.ran(&["plugins", "inspect", "example"])
        );
        insta::assert_snapshot!(
            "schema_mermaid",
            shot.ran(&["schema", "example", "--format", "mermaid"])
        );
        // CSV and JSON, as a program reads them.
        insta::assert_snapshot!(
            "sync_again_csv",
            shot.ran(&["sync", "example", "--store", s, "--format", "csv"])
        );
        insta::assert_snapshot!(
            "runs_csv",
            shot.ran(&["runs", "--store", s, "--format", "csv"])
        );
        insta::assert_snapshot!(
            "query_nodes_json",
            shot.ran(&[
                "query",
                "nodes",
                "AcmeUser",
                "--where",
                "admin=true",
                "--json",
                "--store",
                s
            ])
        );
        insta::assert_snapshot!(
            "query_path_json",
            shot.ran(&[
                "query",
                "path",
                "AcmeUser",
                "user-0003",
                "AcmeGroup",
                "group-000",
                "--json",
                "--store",
                s
            ])
        );
        insta::assert_snapshot!(
            "query_neighbours_csv",
            shot.ran(&[
                "query",
                "neighbours",
                "AcmeGroup",
                "group-000",
                "--direction",
                "in",
                "--format",
                "csv",
                "--store",
                s
            ])
        );
        // Errors: one line naming what was wrong and what to do.
        insta::assert_snapshot!(
            "error_plugin_typo",
            shot.ran(&["sync", "exampel", "--store", s])
        );
        insta::assert_snapshot!(
            "error_label_typo",
            shot.ran(&["query", "nodes", "AcmeUsr", "--store", s])
        );
        insta::assert_snapshot!(
            "error_missing_node",
            shot.ran(&["query", "neighbours", "AcmeUser", "nobody", "--store", s])
        );
        insta::assert_snapshot!(
            "query_nodes_no_match",
            shot.ran(&[
                "query",
                "nodes",
                "AcmeUser",
                "--where",
                "name=nobody",
                "--store",
                s
            ])
        );
        insta::assert_snapshot!(
            "error_bad_where",
            shot.ran(&[
                "query", "nodes", "AcmeUser", "--where", "admin", "--store", s
            ])
        );
        insta::assert_snapshot!(
            "error_json_and_csv",
            shot.ran(&["runs", "--json", "--format", "csv", "--store", s])
        );
        let config = w.config("[plugins.example]\ntenantt = \"acme-corp\"\n");
        insta::assert_snapshot!(
            "error_config_key_typo",
            shot.ran(&["--config", &config, "sync", "example", "--store", s])
        );
        let config = w.config("[sink.neo4j]\nurii = \"bolt://localhost:7687\"\n");
        insta::assert_snapshot!(
            "error_config_sink_key_typo",
            shot.ran(&["--config", &config, "runs"])
        );
        let config = w.config("[plugins.exampel]\nlimit = 3\n");
        insta::assert_snapshot!(
            "error_config_section_typo",
            shot.ran(&["--config", &config, "sync", "example", "--store", s])
        );
    });
}
