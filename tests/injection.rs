//! Shell injection, as a property: generated hostile strings (quotes, `$(...)`, backticks, `;`,
//! newlines, globs, leading dashes, Jinja2 in what a host answers) go through real sshd in host
//! vars, extra vars, a registered result and a file name, and arrive as the same bytes; a canary
//! command inside them never runs. Each case is one real `recover play`, so CI runs a few dozen
//! (RECOVER_INJECTION_CASES sets how many; longer runs are recorded in RELIABILITY.md).

mod common;

use std::path::Path;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Pieces the shell, printf, YAML and Jinja2 treat specially; `canary` is a file a successful
/// injection would create. Jinja2 only with `jinja`: host and extra vars are templates, as in
/// Ansible (`url: "http://{{ vip }}"`); what a host answers is data and may hold anything.
fn pieces(canary: &Path, jinja: bool) -> Vec<String> {
    let c = canary.display();
    let mut v: Vec<String> = [
        "'", "\"", "\\", "$", "`", ";", "|", "&", "&&", "\n", "\t", "\r", "*", "?", "~", " ", "-", "--", "-rf", "%s", "%n", "%%", "#", ">", "<", "!",
        "$HOME", "${IFS}", "é", "→", "a", "b", "0", "=", ":", ": ", "- ", "[", "]", "(", ")", "\\n", "'\"'\"'", "\"'",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend([format!("$(touch {c})"), format!("`touch {c}`"), format!("; touch {c} #"), format!("' ; touch {c} ; '"), format!("\" ; touch {c} ; \""), format!("\ntouch {c}\n")]);
    if jinja {
        v.extend(["{", "}", "{{ 7*7 }}", "{%", "%}", "{{", "}}", "{# x #}", "{{ lookup('pipe', 'id') }}"].iter().map(|s| s.to_string()));
    }
    v
}

fn hostile(pieces: Vec<String>) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pieces), 0..14).prop_map(|p| p.concat())
}

const PLAYBOOK: &str = r#"- hosts: data
  tasks:
    - shell: printf '%s' {{ evil }} > {{ out }}/shell.txt
    - command:
        argv: [sh, -c, 'printf "%s" "$1" > "$2"', sh, '{{ evil_host }}', '{{ out }}/argv.txt']
        expand_argument_vars: false
    - copy:
        content: '{{ evil }}'
        dest: '{{ out }}/copy.txt'
    - file:
        path: '{{ out }}/f-{{ (evil | regex_replace("[/\n]", "_"))[:60] }}'
        state: touch
    - command: cat {{ out }}/seed
      register: answer
    - shell: printf '%s' {{ answer.stdout }} > {{ out }}/registered.txt
    - copy:
        content: '{{ answer.stdout }}'
        dest: '{{ out }}/registered-copy.txt'
"#;

#[test]
fn hostile_strings_in_vars_registered_output_and_file_names_reach_the_host_as_data() {
    lab();
    let scratch = host_scratch("188", "inject");
    let canary = scratch.join("PWNED");
    let out = scratch.join("out");
    let tmp = tempfile::tempdir().unwrap();
    let pb = write(tmp.path(), "pb.yml", PLAYBOOK);
    let inv = lab_inventory_dir(tmp.path());
    let cases = std::env::var("RECOVER_INJECTION_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(40);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = (hostile(pieces(&canary, false)), hostile(pieces(&canary, false)), hostile(pieces(&canary, true)));
    let result = runner.run(&strategy, |(evil, evil_host, answer)| {
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        // What the host will answer: `cat` prints it; as in Ansible, the registered stdout loses
        // its trailing CR and LF characters.
        std::fs::write(out.join("seed"), format!("{answer}\n")).unwrap();
        assert!(std::process::Command::new("chown").args(["-R", "ollama:", out.to_str().unwrap()]).status().unwrap().success());
        write(&inv.parent().unwrap().join("host_vars"), "188.yml", &format!("evil_host: {}\n", serde_json::to_string(&evil_host).unwrap()));
        let vars = write(tmp.path(), "vars.json", &serde_json::json!({"evil": evil, "out": out.display().to_string()}).to_string());
        let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "-e", &format!("@{}", vars.display())]).run();
        prop_assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        prop_assert!(!canary.exists(), "a hostile value was executed");
        let read = |f: &str| std::fs::read_to_string(out.join(f)).map_err(|e| TestCaseError::fail(format!("{f}: {e}")));
        prop_assert_eq!(read("shell.txt")?, evil.clone(), "extra var through a shell template");
        prop_assert_eq!(read("copy.txt")?, evil.clone(), "extra var as file content");
        // (With expand_argument_vars left on, `$NAME` and a leading `~` expand as in ansible-core,
        // compared with it in tests/modules/command-raw-script.yml; nothing else ever does.)
        prop_assert_eq!(read("argv.txt")?, evil_host, "host var through command argv");
        // 60 characters at most 4 bytes each: under the 255-byte name limit.
        let name = format!("f-{}", evil.replace(['/', '\n'], "_").chars().take(60).collect::<String>());
        prop_assert!(out.join(&name).exists(), "file named {:?} missing", name);
        let answered = answer.trim_end_matches(['\r', '\n']).to_string();
        prop_assert_eq!(read("registered.txt")?, answered.clone(), "registered output through a shell template");
        prop_assert_eq!(read("registered-copy.txt")?, answered, "registered output as file content");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
