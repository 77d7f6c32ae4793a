//! The engine over the real loopback fleet (real sshd on 127.0.0.110/120/121/188).
//! Each test is one of issue 2's "done when" items, told as a story.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn inventory_graph_and_list_show_the_sop_fleet() {
    let graph = Recover::new().args(["inventory", "-i", "inventory/awoooi.yml", "--graph"]).run();
    assert_eq!(graph.code, 0, "{}", graph.stderr);
    assert!(graph.stdout.starts_with("@all:\n  |--@ungrouped:\n  |--@data:\n  |  |--188\n"), "{}", graph.stdout);
    assert!(graph.stdout.contains("  |--@registry:\n  |  |--110\n"), "{}", graph.stdout);
    assert!(graph.stdout.contains("  |  |--@k3s_server:\n  |  |  |--120\n"), "{}", graph.stdout);

    let list = Recover::new().args(["inventory", "-i", "inventory/awoooi.yml", "--list"]).run();
    assert_eq!(list.code, 0, "{}", list.stderr);
    let j: serde_json::Value = serde_json::from_str(&list.stdout).expect("--list is JSON");
    // The values written in the file, merged per host (compared with ansible-inventory in bench/compare).
    let raw: serde_json::Value = {
        let text = std::fs::read_to_string(repo().join("inventory/awoooi.yml")).unwrap();
        let host_line = text.lines().find(|l| l.contains("ansible_host:") && text.contains("\"188\":")).unwrap().to_string();
        serde_json::json!({ "first_ansible_host": host_line.split(':').nth(1).unwrap().trim() })
    };
    assert_eq!(j["_meta"]["hostvars"]["188"]["ansible_host"], raw["first_ansible_host"]);
    assert_eq!(j["_meta"]["hostvars"]["120"]["vip"], j["_meta"]["hostvars"]["188"]["vip"]);
    assert!(j["_meta"]["hostvars"]["120"]["vip"].as_str().unwrap().ends_with(".125"));
    assert_eq!(j["k3s"]["children"], serde_json::json!(["k3s_server", "k3s_agent"]));
    assert_eq!(j["data"]["hosts"], serde_json::json!(["188"]));
    assert!(j["all"]["children"].as_array().unwrap().contains(&serde_json::json!("ungrouped")));
    // ansible-inventory's layout: indent 4, sorted keys.
    assert!(list.stdout.starts_with("{\n    \"_meta\": {\n        \"hostvars\": {\n"), "{}", &list.stdout[..80]);
}

#[test]
fn exec_runs_on_the_k3s_hosts_in_parallel_over_ssh() {
    lab();
    let run = Recover::new().args(["exec", "k3s", "--output", "json", "--", "date +%s%N; sleep 0.5; date +%s%N; hostname >/dev/null; uptime"]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let events = run.events();
    let hosts: Vec<&str> = events.iter().map(|e| e["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["120", "121"]);
    // Both ran at once: each one's interval overlaps the other's.
    let span = |e: &serde_json::Value| {
        let lines: Vec<u128> = e["stdout"].as_str().unwrap().lines().take(2).map(|l| l.parse().unwrap()).collect();
        (lines[0], lines[1])
    };
    let (a, b) = (span(&events[0]), span(&events[1]));
    assert!(a.0 < b.1 && b.0 < a.1, "not parallel: {a:?} {b:?}");
    assert!(events[0]["stdout"].as_str().unwrap().contains("load average"));
}

#[test]
fn sample_playbook_converges_then_reports_no_change_and_dry_run_shows_drift_without_touching_it() {
    lab();
    let scratch = host_scratch("188", "sample");
    let prefix = scratch.join("nginx");
    let _nginx = KillOnDrop(prefix.join("nginx.pid"));
    let vars = [
        "-e".to_string(),
        format!("nginx_prefix={}", prefix.display()),
        "-e".to_string(),
        format!("nginx_listen=127.0.0.188:{}", free_port("127.0.0.188")),
    ];
    let first = Recover::new().args(["play", "sample-site", "--output", "json"]).args(&vars).run();
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert!(first.recap()["188"]["changed"].as_u64().unwrap() >= 4, "{}", first.stdout);

    let second = Recover::new().args(["play", "sample-site", "--output", "json"]).args(&vars).run();
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert_eq!(second.recap()["188"]["changed"], 0, "second run changed something:\n{}", second.stdout);
    assert_eq!(second.recap()["188"]["failed"], 0);

    // Someone edits the live site by hand: dry-run shows the exact diff and touches nothing.
    let site = prefix.join("sites/recover-demo.conf");
    let live = std::fs::read_to_string(&site).unwrap();
    std::fs::write(&site, live.replace("return 200 \"ok\\n\";", "return 503;")).unwrap();
    let before = tree_hash(&scratch);
    let dry = Recover::new().args(["play", "sample-site", "--dry-run", "--diff"]).args(&vars).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("would change") && dry.stdout.contains("Write the site"), "{}", dry.stdout);
    assert!(dry.stdout.contains("-        return 503;"), "{}", dry.stdout);
    assert!(dry.stdout.contains("+        return 200 \"ok\\n\";"), "{}", dry.stdout);
    assert_eq!(before, tree_hash(&scratch), "dry-run changed a file");
    // A dry-run writes no run log; a real run does.
    assert!(!dry.stdout.contains("run log:"));
}

/// An inventory whose only host listens nowhere: if recover connected, the
/// run would end "unreachable" (exit 3), not with the input error (exit 1).
fn dead_inventory(dir: &Path) -> std::path::PathBuf {
    write(dir, "dead.yml", "all:\n  hosts:\n    ghost:\n      ansible_host: 127.0.0.9\n      ansible_port: 1\n")
}

#[test]
fn bad_playbooks_fail_with_file_line_column_before_connecting() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = dead_inventory(tmp.path());
    let cases = [
        ("yaml.yml", "- hosts: all\n  tasks:\n    - debug: {msg: [1, 2}\n", ":3:", "YAML syntax error"),
        ("module.yml", "- hosts: all\n  tasks:\n    - name: oops\n      copyy:\n        dest: /x\n", ":4:7:", "did you mean 'copy'"),
        ("undef.yml", "- hosts: all\n  tasks:\n    - shell: echo {{ not_defined_anywhere }}\n", ":3:", "undefined variable 'not_defined_anywhere'"),
        ("arg.yml", "- hosts: all\n  tasks:\n    - file:\n        path: /x\n        stat: directory\n", ":5:9:", "did you mean 'state'"),
        ("tmpl.yml", "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ x | }}\"\n", ":4:", "syntax error"),
        ("collection.yml", "- hosts: all\n  tasks:\n    - sysctl: name=vm.swappiness value=10\n", ":3:7:", "ansible.posix.sysctl, from the ansible.posix collection"),
        ("timezone.yml", "- hosts: all\n  tasks:\n    - action: timezone name=UTC\n", ":3:15:", "community.general.timezone"),
        ("async0.yml", "- hosts: all\n  tasks:\n    - file: {path: /x, state: touch}\n      async: 10\n      poll: 0\n", ":5:", "`poll: 0` on `file`"),
    ];
    for (name, text, at, what) in cases {
        let pb = write(tmp.path(), name, text);
        // As on a controller with no ansible-core: a collection's module is a load error that
        // says what to install (with ansible-core, tests/modules/collection-modules.yml runs them).
        let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()]).env("RECOVER_ANSIBLE_PYTHON", "/nonexistent/python3").run();
        assert_eq!(run.code, 1, "{name}: {}{}", run.stdout, run.stderr);
        if name == "collection.yml" || name == "timezone.yml" {
            assert!(run.stderr.contains("install ansible-core"), "{name}: says what to install:\n{}", run.stderr);
        }
        let expect = format!("{}{at}", pb.display());
        assert!(run.stderr.contains(&expect), "{name}: wants {expect} in:\n{}", run.stderr);
        assert!(run.stderr.contains(what), "{name}: wants {what:?} in:\n{}", run.stderr);
        assert!(!run.stdout.contains("UNREACHABLE"), "{name} connected before failing");
    }
}

#[test]
fn a_killed_sshd_makes_its_host_unreachable_while_the_others_finish() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    // 121 gets an sshd of its own, which this test then kills by PID.
    let sshd = PrivateSshd::start("121");
    let inv = sshd.inventory.clone();
    let pb = write(tmp.path(), "pb.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: hostname\n    - command: uname -r\n");
    let ok = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--output", "json"]).run();
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);

    let pid = std::fs::read_to_string(sshd.pidfile()).unwrap();
    assert!(std::process::Command::new("kill").arg(pid.trim()).status().unwrap().success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--output", "json"]).run();
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let recap = run.recap();
    assert_eq!(recap["121"]["unreachable"], 1, "{recap}");
    for h in ["110", "120", "188"] {
        assert_eq!(recap[h]["changed"], 2, "{h} did not finish: {recap}");
        assert_eq!(recap[h]["unreachable"], 0);
    }
}

#[test]
fn hostile_values_reach_the_remote_as_literal_data() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let scratch = host_scratch("188", "quote");
    let canary = scratch.join("PWNED");
    let evil = format!("; touch {c} $(touch {c}) `touch {c}` ' \" \\ $HOME * \n| touch {c} && rm -rf /nonexistent-recover", c = canary.display());
    let inv = lab_inventory_dir(tmp.path());
    write(&inv.parent().unwrap().join("host_vars"), "188.yml", &format!("evil_host: {}\n", serde_json::to_string(&evil).unwrap()));
    let vars = write(tmp.path(), "evil.yml", &format!("evil: {}\nout: {}\n", serde_json::to_string(&evil).unwrap(), serde_json::to_string(&scratch.display().to_string()).unwrap()));
    let pb = write(
        tmp.path(),
        "pb.yml",
        "- hosts: data\n  gather_facts: false\n  tasks:\n    - shell: printf '%s' {{ evil }} > {{ out }}/shell.txt\n    - command:\n        argv: [sh, -c, 'printf \"%s\" \"$1\" > \"$2\"', sh, '{{ evil_host }}', '{{ out }}/argv.txt']\n        expand_argument_vars: false\n    - copy:\n        content: '{{ evil }}'\n        dest: '{{ out }}/copy.txt'\n    - file:\n        path: '{{ out }}/{{ evil | regex_replace(\"[/\\n]\", \"_\") }}'\n        state: touch\n",
    );
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "-e", &format!("@{}", vars.display())]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for f in ["shell.txt", "argv.txt", "copy.txt"] {
        assert_eq!(std::fs::read_to_string(scratch.join(f)).unwrap(), evil, "{f}");
    }
    assert!(!canary.exists(), "a hostile value was executed");
    let names: Vec<String> = std::fs::read_dir(&scratch).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n.starts_with("; touch _")), "{names:?}");
}

#[test]
fn no_input_makes_recover_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = dead_inventory(tmp.path());
    let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        laughs.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", ")));
    }
    let playbooks = [
        "".to_string(),
        "\u{0}\u{1}\u{2}".to_string(),
        "42".to_string(),
        "- 42".to_string(),
        "- hosts: [1, {a: b}]".to_string(),
        "- hosts: all\n  gather_facts: false\n  tasks: 5".to_string(),
        "- hosts: all\n  gather_facts: false\n  tasks: [[], {}, null]".to_string(),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - {debug: {msg: x}, command: y}".to_string(),
        "- hosts: all\n  gather_facts: false\n  serial: -3\n  tasks: []".to_string(),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: '{{ 1 / 0 }}'}".to_string(),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: '{% for x in range(10**12) %}{% endfor %}'}".to_string(),
        "- hosts: '~[unclosed'\n  gather_facts: false\n  tasks: []".to_string(),
        "[".repeat(5000),
        laughs,
        "- hosts: all\n  gather_facts: false\n  roles: [no-such-role]".to_string(),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - import_tasks: /dev/null/nope.yml".to_string(),
    ];
    for (i, text) in playbooks.iter().enumerate() {
        let pb = write(tmp.path(), &format!("p{i}.yml"), text);
        let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()]).run();
        // Load errors exit 1; errors met while running (after connecting to the dead host) exit 2 or 3.
        assert!((1..=3).contains(&run.code), "case {i}: exit {} (101 is a panic)\n{}", run.code, run.stderr);
        assert!(!run.stderr.contains("panicked"), "case {i}: {}", run.stderr);
    }
    let inventories = ["all: 5", "all:\n  hosts:\n    'h[1:': {}", "[g\nh1", "[g:vars]\nnoequals", "all:\n  children:\n    a:\n      children:\n        a: {}"];
    for (i, text) in inventories.iter().enumerate() {
        let p = write(tmp.path(), &format!("inv{i}.yml"), text);
        let run = Recover::new().args(["inventory", "-i", p.to_str().unwrap(), "--graph"]).run();
        assert!(run.code == 0 || run.code == 1, "inventory {i}: exit {}\n{}", run.code, run.stderr);
        assert!(!run.stderr.contains("panicked"), "inventory {i}: {}", run.stderr);
    }
    for bad in [vec!["play"], vec!["exec", "all"], vec!["play", "x", "--forks", "0"], vec!["render"], vec!["play", "nope-no-such"]] {
        let run = Recover::new().args(&bad).run();
        assert!(run.code == 1 || run.code == 2, "{bad:?}: exit {}", run.code);
        assert!(!run.stderr.contains("panicked"), "{bad:?}: {}", run.stderr);
    }
}

#[test]
fn render_prints_a_template_exactly() {
    let run = Recover::new()
        .args(["render", "templates/site.conf.j2", "-e", "site_name=demo", "-e", "nginx_listen=127.0.0.1:81", "-e", "site_root=/srv/demo", "-e", "inventory_hostname=h1"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "# demo on h1\nserver {\n    listen 127.0.0.1:81;\n    server_name demo;\n    root /srv/demo;\n    location = /healthz {\n        return 200 \"ok\\n\";\n    }\n    location = /ready {\n        return 200 \"ok\\n\";\n    }\n}\n"
    );
}

#[test]
fn secret_variables_are_masked_in_output_diffs_json_and_the_run_log() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let scratch = host_scratch("188", "secrets");
    let inv = lab_inventory_dir(tmp.path());
    write(&inv.parent().unwrap().join("host_vars"), "188.yml", "db_password: hunter2-Secret\napi_token: \"{{ 'tok' ~ 'en-xyz-123' }}\"\n");
    let pb = write(
        tmp.path(),
        "pb.yml",
        &format!(
            "- hosts: data\n  gather_facts: false\n  tasks:\n    - shell: echo connect with {{{{ db_password }}}} and {{{{ api_token }}}}\n      read_only: true\n    - copy:\n        content: \"password={{{{ db_password }}}}\\n\"\n        dest: {0}/app.conf\n    - debug:\n        msg: \"token is {{{{ api_token }}}}\"\n",
            scratch.display()
        ),
    );
    let text = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "-v", "--diff"]);
    let t = text.run();
    assert_eq!(t.code, 0, "{}{}", t.stdout, t.stderr);
    let json = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--output", "json", "--dry-run", "--diff"]).run();
    assert_eq!(json.code, 0, "{}{}", json.stdout, json.stderr);
    let log: String = text.run_log().iter().map(|e| e.to_string()).collect();
    for (what, out) in [("text", &t.stdout), ("json", &json.stdout), ("run log", &log)] {
        assert!(!out.contains("hunter2-Secret") && !out.contains("token-xyz-123"), "{what} shows a secret:\n{out}");
        assert!(out.contains("********"), "{what} has no mask:\n{out}");
    }
    // The secret itself still reached the host: masking is display only.
    assert_eq!(std::fs::read_to_string(scratch.join("app.conf")).unwrap(), "password=hunter2-Secret\n");
}

#[test]
fn a_hanging_command_is_killed_at_the_task_timeout_and_fails_clearly() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let pb = write(tmp.path(), "hang.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - name: hangs\n      command: sleep 600\n      timeout: 2\n    - name: never reached\n      command: \"true\"\n");
    let started = std::time::Instant::now();
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--output", "json"]).run();
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let hang = run.task_events().into_iter().find(|e| e["task"] == "hangs").unwrap();
    assert_eq!(hang["status"], "failed");
    assert!(hang["msg"].as_str().unwrap().contains("timed out after 2s and was killed"), "{hang}");
    assert!(!run.task_events().iter().any(|e| e["task"] == "never reached"));
    // Bounded: well under the command's own 600 s (not a timing assertion on recover's speed).
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
    // Nothing of it is left running on the host.
    let left = Command::new("pgrep").args(["-u", "ollama", "-f", "sleep 600"]).output().unwrap();
    assert!(left.stdout.is_empty(), "sleep 600 still runs: {}", String::from_utf8_lossy(&left.stdout));
}

#[test]
fn a_changed_host_key_stops_that_host_with_a_clear_message() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let inv = lab_inventory_dir(tmp.path());
    // known_hosts holds another key for 188: as if the host (or someone in between) changed.
    let other = tmp.path().join("other");
    assert!(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f", other.to_str().unwrap()]).status().unwrap().success());
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let kh = write(tmp.path(), "known_hosts", &format!("[127.0.0.188]:2222 {}\n", pubkey.split_whitespace().take(2).collect::<Vec<_>>().join(" ")));
    write(&inv.parent().unwrap().join("host_vars"), "188.yml", &format!("ansible_ssh_common_args: \"-o UserKnownHostsFile={}\"\n", kh.display()));
    let pb = write(tmp.path(), "pb.yml", "- hosts: data:registry\n  gather_facts: false\n  tasks:\n    - command: \"true\"\n");
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--output", "json"]).run();
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let ev = run.task_events();
    let bad = ev.iter().find(|e| e["host"] == "188").unwrap();
    assert_eq!(bad["status"], "unreachable");
    assert!(bad["msg"].as_str().unwrap().contains("host key does not match known_hosts"), "{bad}");
    assert!(ev.iter().any(|e| e["host"] == "110" && e["status"] == "changed"), "the other host should finish");
    // The mismatching key was not replaced.
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 1);
}

/// The benchmark's sshd fleet (bench/fleet), stopped on drop if this test started it: a fleet
/// that was already up belongs to a benchmark, and stays up, with its inventories untouched.
struct Fleet {
    started: bool,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if self.started {
            let _ = Command::new(repo().join("bench/fleet")).arg("down").output();
        }
    }
}

#[test]
fn fifty_hosts_with_five_failing_or_unreachable_the_other_45_finish_and_the_recap_is_right() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let was_up = std::fs::read_to_string("/tmp/recover-bench/sshd/47.pid").is_ok_and(|p| Path::new(&format!("/proc/{}", p.trim())).exists());
    let up = Command::new(repo().join("bench/fleet")).args(["up", "47"]).env("BENCH_OUT", tmp.path()).output().unwrap();
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let _fleet = Fleet { started: !was_up };
    let lab = lab_root();
    let mut inv = String::from("all:\n  vars:\n    ansible_port: 2222\n    ansible_user: wooo\n");
    inv.push_str(&format!("    ansible_ssh_private_key_file: {}/ssh/id_ed25519\n    ansible_ssh_common_args: \"-o UserKnownHostsFile=/tmp/recover-bench/known_hosts\"\n", lab.display()));
    inv.push_str("    recover_lock_dir: \"/tmp/recover-bench/{{ inventory_hostname }}/lock\"\n  hosts:\n");
    for i in 1..=47 {
        inv.push_str(&format!("    h{i}: {{ansible_host: 127.0.1.{i}}}\n"));
    }
    for i in 1..=3 {
        // Nothing listens there: unreachable.
        inv.push_str(&format!("    gone{i}: {{ansible_host: 127.0.2.{i}}}\n"));
    }
    let inv = write(tmp.path(), "fifty.yml", &inv);
    let pb = write(
        tmp.path(),
        "pb.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: \"true\"\n    - fail: {msg: this host is broken}\n      when: inventory_hostname in ['h7', 'h31']\n    - command: uname -r\n",
    );
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--forks", "50", "--output", "json"]).run();
    assert_eq!(run.code, 2, "a failed step outranks unreachable hosts: {}", run.stderr);
    let recap = run.recap();
    let hosts = recap.as_object().unwrap();
    assert_eq!(hosts.len(), 50);
    let finished: Vec<&String> = hosts.iter().filter(|(_, c)| c["changed"] == 2 && c["failed"] == 0 && c["unreachable"] == 0).map(|(h, _)| h).collect();
    assert_eq!(finished.len(), 45, "{recap}");
    for h in ["h7", "h31"] {
        assert_eq!(recap[h]["failed"], 1, "{h}: {}", recap[h]);
        assert_eq!(recap[h]["changed"], 1, "{h} stopped after its failure: {}", recap[h]);
    }
    for h in ["gone1", "gone2", "gone3"] {
        assert_eq!(recap[h]["unreachable"], 1, "{h}: {}", recap[h]);
    }
}

#[test]
fn a_closed_stdout_ends_a_command_quietly_with_141_not_a_panic() {
    // `recover list | head`, with the reader gone before the first line.
    for args in [vec!["list"], vec!["inventory", "--graph"], vec!["history"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Recover::new().args(&args).command().stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// A play over hosts reached by the local connection (these tests are about the engine, not
/// the transport), each with a lock folder of its own unless `vars` says otherwise: `vars` go
/// under `all.vars`, `hosts` is the rest of `all`.
fn local_play(tmp: &Path, vars: &str, hosts: &str, playbook: &str, args: &[&str]) -> Run {
    local_play_with(tmp, vars, hosts, playbook, args, &[])
}

fn local_play_with(tmp: &Path, vars: &str, hosts: &str, playbook: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all_vars = vec!["ansible_connection: local".to_string()];
    if !vars.contains("recover_lock_dir") {
        all_vars.push(format!("recover_lock_dir: '{}/{{{{ inventory_hostname }}}}.lock'", tmp.display()));
    }
    all_vars.extend((!vars.is_empty()).then(|| vars.to_string()));
    let inv = write(tmp, "inv.yml", &format!("all:\n  vars: {{{}}}\n{hosts}", all_vars.join(", ")));
    let pb = write(tmp, "pb.yml", playbook);
    env.iter().fold(Recover::new(), |r, (k, v)| r.env(k, v)).args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--output", "json"]).args(args).run()
}

/// With no ansible-core on the controller, an ansible.builtin module recover does not implement
/// loads, as in ansible-core (a role's branch for another platform uses them), and refuses, by
/// name, a step that reaches it. (This host is this machine: the module must never run here.)
#[test]
fn an_ansible_builtin_module_recover_lacks_loads_and_refuses_the_step_that_reaches_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run = local_play_with(
        tmp.path(),
        "",
        "  hosts: {a: {}}\n",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.iptables: {chain: INPUT, jump: ACCEPT}\n      when: false\n    - debug: {msg: after}\n    - iptables: {chain: INPUT, jump: ACCEPT}\n    - debug: {msg: never}\n",
        &[],
        &[("RECOVER_ANSIBLE_PYTHON", "/nonexistent/python3")],
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let ev = run.task_events();
    assert_eq!(ev[0]["status"], "skipped", "{}", ev[0]);
    assert_eq!(ev[1]["output"], "after", "{}", ev[1]);
    assert_eq!(ev[2]["status"], "failed", "{}", ev[2]);
    assert!(ev[2]["msg"].as_str().unwrap().contains("'iptables' is an ansible.builtin module that recover does not implement"), "{}", ev[2]);
    assert_eq!(ev.len(), 3, "the host went on after the refused step: {}", run.stdout);
}

#[test]
fn magic_variables_follow_each_play_and_win_over_variables_of_the_same_name() {
    let tmp = tempfile::tempdir().unwrap();
    let run = local_play(
        tmp.path(),
        "groups: shadowed, ansible_play_hosts: shadowed",
        "  children:\n    web: {hosts: {w1: {n: 1}, w2: {n: 2}}}\n    db: {hosts: {d1: {n: 3}}}\n",
        "- hosts: web\n  gather_facts: false\n  tasks:\n    - debug: {msg: \"{{ ansible_play_hosts | join(',') }}|{{ groups['db'] | join(',') }}|{{ groups['web'] | length }}|{{ group_names | join(',') }}|{{ hostvars['d1']['n'] }}\"}\n\
         - hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: \"{{ ansible_play_hosts | join(',') }}|{{ groups.all | sort | join(',') }}\"}\n\
         - hosts: db\n  gather_facts: false\n  tasks:\n    - debug: {msg: \"{{ ansible_play_hosts | join(',') }}|{{ groups['web'] | join(',') }}\"}\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let mut got: Vec<(String, String)> = run.task_events().iter().map(|e| (e["host"].as_str().unwrap().to_string(), e["output"].as_str().unwrap_or_default().to_string())).collect();
    got.sort();
    let want = [
        ("d1", "d1|w1,w2"),
        ("d1", "w1,w2,d1|d1,w1,w2"),
        ("w1", "w1,w2,d1|d1,w1,w2"),
        ("w1", "w1,w2|d1|2|web|3"),
        ("w2", "w1,w2,d1|d1,w1,w2"),
        ("w2", "w1,w2|d1|2|web|3"),
    ]
    .map(|(h, m)| (h.to_string(), m.to_string()));
    assert_eq!(got, want);
}

/// Two inventory names of one machine (a delegation to localhost, two aliases) share the lock
/// this run took through the first: both run, as in ansible-core (issue 33); each records its
/// actions in a run file of its own, and the lock is released at the end.
#[test]
fn two_hosts_of_one_machine_share_its_lock_and_both_run() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = format!("recover_lock_dir: '{}/shared.lock'", tmp.path().display());
    let run = local_play(tmp.path(), &shared, "  hosts: {a: {}, b: {}}\n", "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: \"true\"\n", &["--forks", "1"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let ran: Vec<serde_json::Value> = run.task_events().into_iter().filter(|e| e["status"] == "changed").collect();
    assert_eq!(ran.len(), 2, "{}", run.stdout);
    assert!(!tmp.path().join("shared.lock").exists(), "the lock is released at the end");
}

#[test]
fn a_shell_task_gets_a_shell_of_its_own_as_in_ansible() {
    // `$$` is the task's own shell and `kill $$` ends only that task: recover's persistent
    // shell (and the connection) live on. The local connection frames commands as SSH does.
    let tmp = tempfile::tempdir().unwrap();
    let run = local_play(
        tmp.path(),
        "",
        "  hosts: {a: {}}\n",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: echo $$\n      register: one\n    - shell: echo $$\n      register: two\n    - shell: kill -TERM $$; sleep 5\n      ignore_errors: true\n    - debug: {msg: \"{{ one.stdout != two.stdout }}\"}\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let ev = run.task_events();
    assert_eq!(ev[2]["status"], "failed", "kill $$ ends the task's own shell: {}", ev[2]);
    assert!(ev[2]["ignored"].as_bool().unwrap());
    assert_eq!(ev[3]["output"], serde_json::json!(true), "{}", ev[3]);
}

/// `service` with ansible-core's extra arguments on a `command` manager (issue 17): `arguments`
/// reach the start and stop commands, `sleep` waits between the stop and the start of a
/// restart, `pattern` is the status check (a process table match that does not see itself).
#[test]
fn service_arguments_sleep_and_pattern_drive_a_command_managed_service() {
    lab();
    let dir = host_scratch("188", "svc-extras");
    let d = dir.display();
    let svc = write(&dir, "svc.sh", &format!("#!/bin/sh\nprintf '%s %s\\n' \"$(date +%s.%N)\" \"$*\" >> {d}/log\ncase $1 in\n  start) setsid sleep 4243 </dev/null >/dev/null 2>&1 & echo $! > {d}/pid ;;\n  stop) kill \"$(cat {d}/pid)\" ;;\nesac\n"));
    Command::new("chmod").args(["755", svc.to_str().unwrap()]).status().unwrap();
    Command::new("chown").args(["-R", "ollama:", &d.to_string()]).status().unwrap();
    let pb = write(
        &dir,
        "p.yml",
        &format!(
            "- hosts: \"188\"\n  gather_facts: false\n  vars:\n    services:\n      rtsvc: {{manager: command, start: \"{d}/svc.sh start\", stop: \"{d}/svc.sh stop\", status: \"false\"}}\n  tasks:\n{}",
            [
                "- name: start\n  service: name=rtsvc state=started pattern=\"sleep 4243\" arguments=--fast",
                "- name: again\n  service: name=rtsvc state=started pattern=\"sleep 4243\" arguments=--fast",
                "- name: restart\n  service: name=rtsvc state=restarted pattern=\"sleep 4243\" arguments=--fast sleep=1",
                "- name: stop\n  service: name=rtsvc state=stopped pattern=\"sleep 4243\"",
            ]
            .iter()
            .map(|t| t.lines().map(|l| format!("    {l}\n")).collect::<String>())
            .collect::<String>()
        ),
    );
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", "inventory/lab.yml", "--output", "json", "--yes"]).run();
    let statuses: Vec<String> = run.events().iter().filter(|e| e["event"] == "task").map(|e| format!("{} {}", e["task"].as_str().unwrap_or(""), e["status"].as_str().unwrap_or(""))).collect();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(statuses, ["start changed", "again ok", "restart changed", "stop changed"]);
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    let lines: Vec<(f64, &str)> = log.lines().map(|l| l.split_once(' ').map(|(t, w)| (t.parse().unwrap(), w)).unwrap()).collect();
    let words: Vec<&str> = lines.iter().map(|(_, w)| *w).collect();
    assert_eq!(words, ["start --fast", "stop --fast", "start --fast", "stop"], "{log}");
    assert!(lines[2].0 - lines[1].0 >= 1.0, "no sleep between the stop and the start: {log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `throttle` (issue 16): with `throttle: 1` the four lab hosts run the task one at a time (the
/// intervals each host logged never overlap), and a play-level `throttle` reaches its tasks.
#[test]
fn throttle_lets_that_many_hosts_run_a_task_at_once() {
    lab();
    let dir = lab_root().join(format!("throttle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Command::new("chmod").args(["1777", dir.to_str().unwrap()]).status().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let d = dir.display();
    // Each host its own log (the hosts log in as different users).
    let task = format!("shell: \"echo start $(date +%s.%N) {{{{ inventory_hostname }}}} >> {d}/log-{{{{ inventory_hostname }}}}; sleep 0.3; echo end $(date +%s.%N) {{{{ inventory_hostname }}}} >> {d}/log-{{{{ inventory_hostname }}}}\"");
    for (name, text) in [
        ("task.yml", format!("- hosts: all\n  gather_facts: false\n  tasks:\n    - name: one at a time\n      {task}\n      throttle: 1\n")),
        ("play.yml", format!("- hosts: all\n  gather_facts: false\n  throttle: 1\n  tasks:\n    - name: one at a time\n      {task}\n")),
    ] {
        for h in ["110", "120", "121", "188"] {
            let _ = std::fs::remove_file(dir.join(format!("log-{h}")));
        }
        let pb = write(tmp.path(), name, &text);
        let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", "inventory/lab.yml", "--yes", "--forks", "4"]).run();
        assert_eq!(run.code, 0, "{name}: {}{}", run.stdout, run.stderr);
        let log: String = ["110", "120", "121", "188"].iter().map(|h| std::fs::read_to_string(dir.join(format!("log-{h}"))).unwrap_or_default()).collect();
        let mut spans: Vec<(f64, f64)> = Vec::new();
        let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split_whitespace().collect()).collect();
        for l in lines.iter().filter(|l| l[0] == "start") {
            let end = lines.iter().find(|e| e[0] == "end" && e[2] == l[2]).unwrap();
            spans.push((l[1].parse().unwrap(), end[1].parse().unwrap()));
        }
        assert_eq!(spans.len(), 4, "{name}: {log}");
        spans.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for w in spans.windows(2) {
            assert!(w[1].0 >= w[0].1, "{name}: two hosts ran the throttled task at once: {log}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `recover_ssh_persist`: the first run leaves the host's master up (its socket in a 0700
/// folder of the operator's), so the second reaches the host with its listener gone;
/// `recover disconnect` closes it and the third run finds the host unreachable. A folder
/// others can write to is refused before any connection.
#[test]
fn a_kept_connection_serves_the_next_run_until_disconnect_closes_it() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let sshd = PrivateSshd::start("121");
    let inv = sshd.inventory.to_str().unwrap().to_string();
    let pb = write(tmp.path(), "pb.yml", "- hosts: \"121\"\n  gather_facts: false\n  tasks:\n    - command: hostname\n");
    let play = || Recover::new().env("XDG_RUNTIME_DIR", runtime.to_str().unwrap()).env("RECOVER_SSH_PERSIST", "60s").args(["play", pb.to_str().unwrap(), "-i", &inv, "--output", "json"]).run();
    let first = play();
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let dir = runtime.join("recover-ssh");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    let sockets = || std::fs::read_dir(&dir).unwrap().flatten().filter(|e| !e.file_name().to_string_lossy().ends_with(".log")).count();
    assert_eq!(sockets(), 1, "the master's socket is kept");

    // No listener: only the kept connection can reach the host.
    sshd.stop();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(std::net::TcpStream::connect(("127.0.0.121", sshd.port as u16)).is_err());
    let second = play();
    assert_eq!(second.code, 0, "the kept connection was not used: {}{}", second.stdout, second.stderr);
    assert_eq!(second.recap()["121"]["changed"], 1, "{}", second.stdout);

    let closed = Recover::new().env("XDG_RUNTIME_DIR", runtime.to_str().unwrap()).args(["disconnect"]).run();
    assert_eq!(closed.code, 0, "{}{}", closed.stdout, closed.stderr);
    assert!(closed.stdout.contains("closed 1 kept SSH connection"), "{}", closed.stdout);
    assert_eq!(sockets(), 0);
    let third = play();
    assert_eq!(third.code, 3, "{}{}", third.stdout, third.stderr);
    assert_eq!(third.recap()["121"]["unreachable"], 1);

    // A socket folder others may write to is a way into every host: refused by name.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    sshd.restart();
    let open = play();
    assert_ne!(open.code, 0);
    assert!(format!("{}{}", open.stdout, open.stderr).contains("mode 0700"), "{}{}", open.stdout, open.stderr);
}
