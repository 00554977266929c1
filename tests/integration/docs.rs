//! The README holds to the binary: every flag of every command is in its configuration table
//! with the same default and environment variable (and every row is a real flag), every
//! metric of its Metrics table is exported with that type and those labels (and every
//! exported `gateway_*` metric is in the table), every error example is what the binary
//! prints, and every row of its HTTP table names the conformance test that checks it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::CommandFactory;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The lines of the README section whose heading is `heading`, up to the next `## `.
fn section(text: &str, heading: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .map(str::to_string)
        .collect()
}

/// The cells of a Markdown table row, trimmed.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

/// The text of the first `code` span of `cell`, if any.
fn code(cell: &str) -> Option<&str> {
    cell.split('`').nth(1).filter(|_| cell.contains('`'))
}

/// One flag as clap defines it.
#[derive(Debug)]
struct Flag {
    env: Option<String>,
    /// The default as `--help` shows it; `None` for none.
    default: Option<String>,
    /// A switch (`--force`): off unless given.
    switch: bool,
}

/// Every flag of every command: (command or `*` for the global ones, flag) -> definition.
fn flags() -> BTreeMap<(String, String), Flag> {
    let cli = gateway::cli::Cli::command();
    let describe = |arg: &clap::Arg| {
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().to_string())
            .collect();
        let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
        Flag {
            env: arg.get_env().map(|e| e.to_string_lossy().to_string()),
            // An empty default (`--prefix`) is none.
            default: (!default.join("").is_empty() && !switch).then(|| default.join(",")),
            switch,
        }
    };
    let mut all = BTreeMap::new();
    let real = |arg: &&clap::Arg| arg.get_long().is_some_and(|l| l != "help" && l != "version");
    for arg in cli.get_arguments().filter(real) {
        all.insert(
            ("*".to_string(), format!("--{}", arg.get_long().unwrap())),
            describe(arg),
        );
    }
    for command in cli.get_subcommands() {
        for arg in command.get_arguments().filter(real).filter(|a| !a.is_global_set()) {
            let key = (command.get_name().to_string(), format!("--{}", arg.get_long().unwrap()));
            all.insert(key, describe(arg));
        }
    }
    all
}

/// The configuration table: flag -> (the commands it names, or none for all that have it;
/// environment cell; default cell).
fn flag_rows() -> Vec<(String, Vec<String>, String, String)> {
    section(&readme(), "## Configuration")
        .iter()
        .filter(|l| l.starts_with("| `--"))
        .map(|l| {
            let c = cells(l);
            let flag = code(&c[0]).unwrap().to_string();
            let scope = c[0]
                .split_once('(')
                .map(|(_, s)| s.trim_end_matches(')').split(", ").map(str::to_string).collect())
                .unwrap_or_default();
            (flag, scope, c[1].clone(), c[2].clone())
        })
        .collect()
}

#[test]
fn every_flag_is_in_the_configuration_table_with_its_default_and_variable() {
    let flags = flags();
    let rows = flag_rows();
    let mut wrong = Vec::new();
    // Every flag of every command has a row that covers its command.
    for ((command, flag), def) in &flags {
        let row = rows
            .iter()
            .find(|(f, scope, ..)| f == flag && (scope.is_empty() || scope.contains(command)));
        let Some((_, _, env, default)) = row else {
            wrong.push(format!("{flag} ({command}) has no row"));
            continue;
        };
        if code(env) != def.env.as_deref() {
            wrong.push(format!(
                "{flag} ({command}): README says {env:?}, the binary {:?}",
                def.env
            ));
        }
        let documented = code(default).filter(|_| default.starts_with('`'));
        let matches = match (&def.default, documented) {
            (Some(d), Some(doc)) => d == doc,
            (None, None) => !def.switch || default == "off",
            _ => false,
        };
        if !matches {
            wrong.push(format!(
                "{flag} ({command}): README default {default:?}, the binary {:?}",
                def.default
            ));
        }
    }
    // Every row is a real flag of each command it names.
    for (flag, scope, ..) in &rows {
        let commands: Vec<&String> = flags.keys().filter(|(_, f)| f == flag).map(|(c, _)| c).collect();
        if commands.is_empty() {
            wrong.push(format!("the row {flag} names no flag of the binary"));
        }
        for named in scope {
            if !commands.contains(&named) {
                wrong.push(format!("the row {flag} names {named}, which has no such flag"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the README's configuration table is wrong:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_metric_is_in_the_metrics_table_with_its_type_and_labels() {
    let text = readme();
    let table: BTreeMap<String, (String, BTreeSet<String>)> = section(&text, "## Metrics")
        .iter()
        .filter(|l| l.starts_with("| `gateway_"))
        .map(|l| {
            let c = cells(l);
            let labels = c[2].split(", ").filter_map(code).map(str::to_string).collect();
            (code(&c[0]).unwrap().to_string(), (c[1].clone(), labels))
        })
        .collect();
    let metrics = gateway::Metrics::new();
    let exported: BTreeMap<String, (String, BTreeSet<String>)> = metrics
        .catalogue()
        .iter()
        .filter(|m| m.name.starts_with("gateway_"))
        .map(|m| (m.name.clone(), (m.kind.to_string(), m.labels.iter().cloned().collect())))
        .collect();
    let mut wrong = Vec::new();
    for (name, (kind, labels)) in &exported {
        match table.get(name) {
            None => wrong.push(format!("{name} is exported but not in the table")),
            Some((k, l)) if k != kind || l != labels => {
                wrong.push(format!(
                    "{name}: the table says {k} {l:?}, the binary {kind} {labels:?}"
                ));
            }
            Some(_) => {}
        }
    }
    for name in table.keys().filter(|n| !exported.contains_key(*n)) {
        wrong.push(format!("{name} is in the table but not exported"));
    }
    assert!(
        wrong.is_empty(),
        "the README's Metrics table is wrong:\n{}",
        wrong.join("\n")
    );
}

/// Every `$ gateway ...` example followed by `error: ...` is the binary's output, to the byte
/// (run without any `GATEWAY_*` variable, as a newcomer's shell would).
#[test]
fn every_error_example_is_what_the_binary_prints() {
    let text = readme();
    let lines: Vec<&str> = text.lines().collect();
    let mut checked = 0;
    for pair in lines.windows(2) {
        let (Some(command), error) = (pair[0].strip_prefix("$ gateway "), pair[1]) else {
            continue;
        };
        if !error.starts_with("error: ") {
            continue;
        }
        let args: Vec<&str> = command.split_whitespace().collect();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"));
        cmd.args(&args);
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("GATEWAY_") || n.starts_with("AWS_")) {
            cmd.env_remove(name);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end(), error, "`gateway {command}` prints otherwise");
        assert_eq!(
            out.status.code(),
            Some(2),
            "`gateway {command}`: the README says exit code 2"
        );
        checked += 1;
    }
    assert!(checked >= 3, "the README's error examples were not found");
}

/// Every row of the HTTP table names a test that checks it: a comment `README: <the row's
/// request cell>` in the integration tests, beside the cases or the test.
#[test]
fn every_http_table_row_has_a_test_that_names_it() {
    let text = readme();
    let rows: Vec<String> = text
        .lines()
        .skip_while(|l| *l != "| request | answer |")
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| cells(l)[0].clone())
        .collect();
    assert!(rows.len() > 20, "the HTTP table was not found");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration");
    let tests: String = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let missing: Vec<&String> = rows
        .iter()
        .filter(|r| !tests.contains(&format!("README: {r}")))
        .collect();
    assert!(
        missing.is_empty(),
        "rows of the HTTP table no test names:\n{missing:#?}"
    );
}
