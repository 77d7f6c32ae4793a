//! The Ansible playbook language against ansible-core itself (issue 16): each playbook of
//! `tests/language/` runs under `ansible-playbook` (ansible-core from PyPI) and under `recover`,
//! both on lab host 188 over its real sshd as its login, each with `root` a fresh folder there.
//! Compared: the status each task ends with (a loop: each item's), the recap's ok, changed,
//! failed, skipped, rescued and ignored, what `debug` printed, and the tree left under `root`
//! (paths, modes, owners, sha256). It prints `N passed, M failed`; a difference kept on purpose
//! is listed with its reason in `tests/language/known-differences.txt`. A first line
//! `# args: ...` gives both tools the same extra arguments (`--tags`, `--skip-tags`).
//!
//! The modules of `tests/modules/` (issue 17) are compared three times over in the same root:
//! first under `--check --diff` (the tree after it must be ansible-core's: check mode changes
//! nothing but what a `check_mode: false` task makes), then for real under `--diff`, then once
//! more (what a second run reports). Each time the diff lines (`+`/`-`) are compared too.

mod common;

use std::process::Command;

use common::*;

type Statuses = Vec<(String, Vec<String>)>;

/// The case's `# args: ...` first line, as words.
fn extra_args(play: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(play).unwrap_or_default();
    text.lines().next().and_then(|l| l.strip_prefix("# args:")).map(|a| a.split_whitespace().map(str::to_string).collect()).unwrap_or_default()
}

/// What a run gave: each task's statuses, the recap's counts, and what `debug` printed.
#[derive(Debug, PartialEq)]
struct Outcome {
    statuses: Statuses,
    recap: Vec<u64>,
    printed: Vec<serde_json::Value>,
    /// The `+`/`-` lines of the diffs shown (only under `--diff`).
    diffs: Vec<String>,
}

/// The changed lines of a unified diff, headers and "no newline" notes left out.
/// The times of a file diff ("mtime": 1764670000.123) are the moment it ran: written `N`; a
/// hashed known_hosts name (`|1|salt|hmac`) has a random salt: written `|1|HASH`.
fn diff_lines(text: &str) -> Vec<String> {
    let times = regex::Regex::new(r#"("[am]time": )[0-9.e+-]+"#).unwrap();
    let hashed = regex::Regex::new(r"\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+").unwrap();
    text.lines()
        .filter(|l| (l.starts_with('+') && !l.starts_with("+++")) || (l.starts_with('-') && !l.starts_with("---")))
        .map(|l| hashed.replace_all(&times.replace(l, "${1}N"), "|1|HASH").into_owned())
        .collect()
}

/// ansible-playbook on the lab host 188 over ssh, as its login (the same host and user recover
/// works as), with `root` a fresh folder there; its default output parsed.
/// Where a case runs: an inventory and the host of it each tool works on.
#[derive(Clone)]
struct Target {
    inventory: std::path::PathBuf,
    ansible_host: String,
    recover_host: String,
}

fn lab_target() -> Target {
    Target { inventory: repo().join("inventory/lab.yml"), ansible_host: "188".into(), recover_host: "188".into() }
}

fn ansible_outcome(t: &Target, play: &std::path::Path, root: &std::path::Path, mode: &[&str]) -> Outcome {
    // Failures go to stderr in ansible-core 2.19: both streams, in order.
    let out = Command::new("sh")
        .args(["-c", "i=$1 h=$2 p=$3; shift 3; exec ansible-playbook -i \"$i\" -l \"$h\" \"$p\" \"$@\" 2>&1", "sh", t.inventory.to_str().unwrap(), &t.ansible_host, play.to_str().unwrap()])
        .args(["-e", &format!("root={}", root.display()), "-e", "ansible_python_interpreter=/usr/bin/python3"])
        .args(extra_args(play))
        .args(mode)
        .current_dir(repo())
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .output()
        .expect("ansible-playbook (ansible-core from PyPI; .ci/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut statuses: Statuses = Vec::new();
    let mut printed = Vec::new();
    let mut task: Option<String> = None;
    let mut items = false;
    let mut block: Option<String> = None;
    let diffs = if mode.contains(&"--diff") { diff_lines(&text) } else { Vec::new() };
    for line in text.lines() {
        if let Some(b) = &mut block {
            b.push_str(line);
            b.push('\n');
            if line == "}" {
                let v: serde_json::Value = serde_json::from_str(b).unwrap_or(serde_json::Value::Null);
                let v = match v.as_object() {
                    Some(m) if m.contains_key("msg") => m["msg"].clone(),
                    _ => v,
                };
                printed.push(v);
                block = None;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("TASK [").or_else(|| line.strip_prefix("RUNNING HANDLER [")) {
            // A role's task is shown as `ROLE : name` by Ansible; recover names it `name`.
            task = rest.rsplit_once(']').map(|(n, _)| n.split_once(" : ").map_or(n, |(_, t)| t).to_string());
            items = false;
            continue;
        }
        let status = ["ok:", "changed:", "fatal:", "failed:", "skipping:"].iter().find(|p| line.starts_with(**p));
        let (Some(s), Some(t)) = (status, task.clone()) else { continue };
        if *s == "ok:" && line.ends_with("=> {") {
            block = Some("{\n".into());
        }
        let s = match *s {
            "fatal:" | "failed:" => "failed",
            "skipping:" => "skipped",
            other => other.trim_end_matches(':'),
        }
        .to_string();
        let is_item = line.contains("=> (item=") || line.contains("] (item=");
        match statuses.last_mut() {
            // A loop's items, then (for some) a line for the whole task: the items count.
            Some((name, list)) if *name == t && items && is_item => list.push(s),
            Some((name, _)) if *name == t && items => {}
            _ => {
                statuses.push((t.clone(), vec![s]));
                items = is_item;
                if !is_item {
                    task = None;
                }
            }
        }
    }
    let recap = text.lines().skip_while(|l| !l.starts_with("PLAY RECAP")).nth(1).unwrap_or_default().to_string();
    let count = |k: &str| recap.split_whitespace().find_map(|w| w.strip_prefix(&format!("{k}=")).and_then(|n| n.parse().ok())).unwrap_or(u64::MAX);
    Outcome { statuses, recap: ["ok", "changed", "failed", "skipped", "rescued", "ignored"].iter().map(|k| count(k)).collect(), printed, diffs }
}

fn recover_outcome(t: &Target, play: &std::path::Path, root: &std::path::Path, mode: &[&str]) -> Outcome {
    let run = Recover::new()
        .args(["play", play.to_str().unwrap(), "-i", t.inventory.to_str().unwrap(), "--host", &t.recover_host, "--output", "json", "--yes", "-e", &format!("root={}", root.display()), "-e", "ansible_python_interpreter=/usr/bin/python3"])
        .args(extra_args(play))
        .args(mode)
        .run();
    let mut statuses: Statuses = Vec::new();
    let mut printed = Vec::new();
    let mut diffs = Vec::new();
    // A destructive step's diff is in its preview (the task event then leaves it out).
    let events = run.events();
    // Ansible prints an include as `included: FILE for HOST`, not as a status line.
    for e in events.iter().filter(|e| (e["event"] == "task" || e["event"] == "preview") && !e["note"].as_str().is_some_and(|n| n.starts_with("included: "))) {
        if e["event"] == "preview" {
            if mode.contains(&"--diff") {
                diffs.extend(e["diff"].as_str().map(diff_lines).unwrap_or_default());
            }
            continue;
        }
        let (name, status) = (e["task"].as_str().unwrap_or_default().to_string(), e["status"].as_str().unwrap_or_default().to_string());
        if let (Some(d), true) = (e["diff"].as_str(), mode.contains(&"--diff")) {
            diffs.extend(diff_lines(d));
        }
        if e["task"].as_str().is_some_and(|t| t.starts_with("debug") || !t.is_empty()) && status == "ok" && !e["output"].is_null() && e["task"] != "Gathering Facts" {
            printed.push(e["output"].clone());
        }
        match statuses.last_mut() {
            Some((n, list)) if *n == name && !e["item"].is_null() => list.push(status),
            _ => statuses.push((name, vec![status])),
        }
    }
    let recap = &run.recap()[t.recover_host.as_str()];
    let n = |k: &str| recap[k].as_u64().unwrap_or(u64::MAX);
    Outcome { statuses, recap: ["ok", "changed", "failed", "skipped", "rescued", "ignored"].iter().map(|k| n(k)).collect(), printed, diffs }
}

/// The tree under `root`: (relative path, mode, owner, sha256 or link target); mtimes differ.
fn tree(root: &std::path::Path) -> Vec<(String, u32, u32, String)> {
    let r = root.display().to_string();
    // `backup: true` copies are named `file.<n>.<time>~` by both tools: the name is kept to its shape.
    let stamp = regex::Regex::new(r"\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~$").unwrap();
    // A fetched file's folder names the root it came from (`dest/HOST/<root>/...`).
    let rel = r.trim_start_matches('/').to_string();
    // A git checkout's own folder holds times and packs of its own (its working tree is
    // compared); a virtualenv's files hold its own paths and pip's caches: pip's listing is.
    full_tree(root).into_iter().filter(|(p, ..)| !p.contains(".git/") && !p.contains("origin.git") && !p.contains("venv/")).map(|(p, mode, uid, _, what)| (stamp.replace(&p, ".N.TIME~").replace(&rel, "ROOT"), mode, uid, what.replace(&r, "ROOT"))).collect()
}

/// Differences kept on purpose, with the reason (`tests/language/known-differences.txt`).
fn known_differences() -> Vec<String> {
    std::fs::read_to_string(repo().join("tests/language/known-differences.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

/// The loopback HTTP and HTTPS servers of the get_url/uri cases (tests/http/httpd.py), started
/// once, stopped by their PID when the test binary ends; the HTTPS one with a certificate from
/// a CA made here. Their addresses reach both tools as `http_base`, `https_base` and `test_ca`.
struct HttpServers {
    children: Vec<std::process::Child>,
    vars: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for HttpServers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_http_servers() -> HttpServers {
    let dir = tempfile::Builder::new().prefix("recover-httpd").tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("sub")).unwrap();
    std::fs::write(www.join("hello.txt"), "hello from the server\n").unwrap();
    std::fs::write(www.join("data.json"), "{\"name\": \"recover\", \"n\": 3}\n").unwrap();
    std::fs::write(www.join("sub/page.txt"), "a page\n").unwrap();
    use sha2::Digest;
    let sum = format!("{:x}", sha2::Sha256::digest(b"hello from the server\n"));
    std::fs::write(www.join("SHA256SUMS"), format!("{sum}  hello.txt\n{}  sub/page.txt\n", "0".repeat(64))).unwrap();
    let d = dir.path().display().to_string();
    let ssl = format!(
        "set -e; cd {d}; openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=recover-test-ca 2>/dev/null; \
         openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost 2>/dev/null; \
         printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext; openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext 2>/dev/null; chmod 644 ca.pem"
    );
    assert!(Command::new("sh").args(["-c", &ssl]).status().unwrap().success(), "openssl made no test CA");
    let script = repo().join("tests/http/httpd.py");
    let mut children = Vec::new();
    let mut ports = Vec::new();
    for (name, tls) in [("http", false), ("https", true)] {
        let portfile = dir.path().join(format!("{name}.port"));
        let mut c = Command::new("python3");
        c.arg(&script).arg(&www).arg(&portfile);
        if tls {
            c.arg(dir.path().join("srv.pem")).arg(dir.path().join("srv.key"));
        }
        children.push(c.stdin(std::process::Stdio::null()).spawn().unwrap());
        let mut port = String::new();
        for _ in 0..100 {
            if let Ok(p) = std::fs::read_to_string(&portfile) {
                port = p;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!port.is_empty(), "the {name} test server did not start");
        ports.push(port);
    }
    let vars = vec![
        "-e".into(), format!("http_base=http://127.0.0.1:{}", ports[0]),
        "-e".into(), format!("https_base=https://127.0.0.1:{}", ports[1]),
        "-e".into(), format!("test_ca={d}/ca.pem"),
    ];
    HttpServers { children, vars, _dir: dir }
}

/// One case by both tools: Ok, or what differs. A module case runs three times (see the top).
fn compare_case(case: &std::path::Path, servers: &[String]) -> Result<(), String> {
    let stem = case.file_stem().unwrap().to_string_lossy().into_owned();
    let (ra, rr) = (host_scratch("188", &format!("lang-a-{stem}")), host_scratch("188", &format!("lang-r-{stem}")));
    let module_case = case.parent().is_some_and(|p| p.ends_with("modules"));
    let runs: &[(&str, &[&str])] = if module_case { &[("--check --diff", &["--check", "--diff"]), ("--diff", &["--diff"]), ("again", &[])] } else { &[("run", &[])] };
    let mut failures = Vec::new();
    for (label, mode) in runs {
        let mode: Vec<&str> = mode.iter().copied().chain(servers.iter().map(String::as_str)).collect();
        let mode = &mode[..];
        let want = ansible_outcome(&lab_target(), case, &ra, mode);
        if want.statuses.is_empty() {
            failures.push(format!("{} ({label}): ansible-playbook ran no task", case.display()));
            break;
        }
        let mut got = recover_outcome(&lab_target(), case, &rr, mode);
        // What a task printed may name its root: the same for both tools once written `ROOT`.
        let mut want = want;
        for (o, r) in [(&mut want, &ra), (&mut got, &rr)] {
            let r = r.display().to_string();
            o.printed = o.printed.iter().map(|v| serde_json::from_str(&v.to_string().replace(&r, "ROOT")).unwrap_or(v.clone())).collect();
        }
        let (tw, tg) = (tree(&ra), tree(&rr));
        if want == got && tw == tg {
            continue;
        }
        let mut d = format!("{} ({label}):\n  ansible-core: {:?} {:?}\n  recover:      {:?} {:?}\n  (recap: ok, changed, failed, skipped, rescued, ignored)", case.display(), want.statuses, want.recap, got.statuses, got.recap);
        if want.printed != got.printed {
            d.push_str(&format!("\n  printed by ansible-core: {:?}\n  printed by recover:      {:?}", want.printed, got.printed));
        }
        if want.diffs != got.diffs {
            d.push_str(&format!("\n  diff by ansible-core: {:?}\n  diff by recover:      {:?}", want.diffs, got.diffs));
        }
        if tw != tg {
            d.push_str(&format!("\n  tree by ansible-core: {tw:?}\n  tree by recover:      {tg:?}"));
        }
        failures.push(d);
        break;
    }
    let _ = (std::fs::remove_dir_all(&ra), std::fs::remove_dir_all(&rr));
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\n")) }
}

#[test]
fn playbooks_match_ansible_core() {
    lab();
    run_cases("tests/language", &[]);
}

/// The modules of issue 17 (`tests/modules/`): check mode, diff, apply and a second run, each
/// against ansible-playbook's.
#[test]
fn modules_match_ansible_core() {
    lab();
    // The HTTP servers end with the suite, by their PID (the guard's drop, also on a failure).
    let servers = start_http_servers();
    run_cases("tests/modules", &servers.vars);
}

fn run_cases(dir: &str, servers: &[String]) {
    let mut cases: Vec<_> = std::fs::read_dir(repo().join(dir)).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "yml")).collect();
    cases.sort();
    // `RECOVER_CASES=cron` runs only the cases whose name contains it (while working on one).
    if let Ok(only) = std::env::var("RECOVER_CASES") {
        cases.retain(|c| c.file_stem().is_some_and(|s| s.to_string_lossy().contains(only.as_str())));
    }
    let known = known_differences();
    // Three cases at a time (each tool's run is mostly waiting on its host).
    let results: Vec<(String, Result<(), String>)> = std::thread::scope(|sc| {
        let chunks: Vec<Vec<std::path::PathBuf>> = (0..3).map(|i| cases.iter().skip(i).step_by(3).cloned().collect()).collect();
        let handles: Vec<_> = chunks.into_iter().map(|chunk| sc.spawn(move || chunk.iter().map(|c| (c.file_stem().unwrap().to_string_lossy().into_owned(), compare_case(c, servers))).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("a case thread panicked")).collect()
    });
    let mut failed = Vec::new();
    let (mut passed, mut kept) = (0, 0);
    for (stem, r) in results {
        match r {
            Ok(()) => {
                passed += 1;
                assert!(!known.contains(&stem), "{stem} matches ansible-core now: take it off known-differences.txt");
            }
            Err(_) if known.contains(&stem) => kept += 1,
            Err(d) => failed.push(d),
        }
    }
    println!("{passed} passed, {} failed, {kept} kept differences (tests/language/known-differences.txt)", failed.len());
    assert!(failed.is_empty(), "outcomes differ from ansible-core:\n{}", failed.join("\n"));
}

#[test]
fn file_state_directory_gives_created_parents_the_mode_as_ansible_core() {
    lab();
    let scratch = host_scratch("188", "file-parents");
    let local = tempfile::tempdir().unwrap();
    let play = |root: &std::path::Path| format!("- hosts: all\n  gather_facts: false\n  tasks:\n    - file: {{path: \"{}/d1/sub/leaf\", state: directory, mode: \"0750\"}}\n", root.display());
    let (pa, pr) = (local.path().join("a.yml"), local.path().join("r.yml"));
    std::fs::write(&pa, play(&local.path().join("tree"))).unwrap();
    std::fs::write(&pr, play(&scratch)).unwrap();
    let python = String::from_utf8_lossy(&Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().unwrap().stdout).trim().to_string();
    let a = Command::new("ansible-playbook").args(["-i", "localhost,", "-c", "local", pa.to_str().unwrap()]).env("ANSIBLE_PYTHON_INTERPRETER", python).output().unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stdout));
    let r = Recover::new().args(["play", pr.to_str().unwrap(), "-i", "inventory/lab.yml", "--host", "188", "--yes"]).run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: std::path::PathBuf| std::fs::metadata(&p).map(|m| m.permissions().mode() & 0o7777).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    for rel in ["d1", "d1/sub", "d1/sub/leaf"] {
        let (want, got) = (mode(local.path().join("tree").join(rel)), mode(scratch.join(rel)));
        assert_eq!(got, want, "{rel}: ansible-core made it {want:o}, recover {got:o}");
    }
    assert_eq!(mode(scratch.join("d1")), 0o750);
}

/// ansible.cfg as ansible-core finds it (here `./ansible.cfg`, and `ANSIBLE_CONFIG`): its
/// inventory, roles_path and gathering are read by both tools; a setting recover does not
/// read is named in a warning.
#[test]
fn ansible_cfg_inventory_roles_path_and_gathering_as_ansible_core_reads_them() {
    lab();
    let dir = tempfile::tempdir().unwrap();
    let inv = repo().join("inventory/lab.yml");
    std::fs::write(dir.path().join("ansible.cfg"), format!("# a project's config\n[defaults]\ninventory = {}\nroles_path = ./myroles\ngathering = explicit\nstdout_callback = default\nstrategy = linear\n\n[privilege_escalation]\nbecome = False\n", inv.display())).unwrap();
    write(&dir.path().join("myroles/hello/tasks"), "main.yml", "- name: from roles_path\n  command: echo hello\n  changed_when: false\n");
    let play = write(dir.path(), "site.yml", "- hosts: \"188\"\n  roles: [hello]\n  tasks:\n    - name: no facts with gathering = explicit\n      assert:\n        that: ansible_facts is not defined or ansible_facts == {}\n");
    // Over ssh to the lab host, as its user: the host's own python.
    let a = Command::new("ansible-playbook").arg(&play).current_dir(dir.path()).env("ANSIBLE_NOCOLOR", "1").env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3").output().unwrap();
    let atext = String::from_utf8_lossy(&a.stdout);
    assert!(a.status.success(), "ansible-playbook with this ansible.cfg: {atext}{}", String::from_utf8_lossy(&a.stderr));
    assert!(!atext.contains("Gathering Facts"), "{atext}");
    let mut cmd = Recover::new().args(["play", play.to_str().unwrap(), "--output", "json"]).command();
    let out = cmd.current_dir(dir.path()).stdin(std::process::Stdio::null()).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("from roles_path") && !stdout.contains("Gathering Facts"), "{stdout}");
    assert!(stderr.contains("[defaults] strategy"), "the unread setting is named: {stderr}");
    // ANSIBLE_CONFIG names the file to read wherever recover runs; a broken one is an error with its line.
    let bad = write(dir.path(), "bad.cfg", "forks = 3\n");
    let mut cmd = Recover::new().args(["play", play.to_str().unwrap()]).env("ANSIBLE_CONFIG", bad.to_str().unwrap()).command();
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.cfg:1:1"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `--list-tasks` names what ansible-playbook names (roles as `ROLE : task`), and
/// `--start-at-task` starts where ansible-playbook starts.
#[test]
fn list_tasks_and_start_at_task_as_ansible_playbook() {
    lab();
    let case = repo().join("tests/language/roles-include-import.yml");
    let python = String::from_utf8_lossy(&Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().unwrap().stdout).trim().to_string();
    let a = Command::new("ansible-playbook").args(["-i", "localhost,", "-c", "local", "--list-tasks", case.to_str().unwrap()]).env("ANSIBLE_PYTHON_INTERPRETER", &python).output().unwrap();
    let names = |text: &str| -> Vec<String> { text.lines().filter(|l| l.contains("\tTAGS:") && !l.contains("play #")).map(|l| l.split('\t').next().unwrap_or("").trim().to_string()).collect() };
    let want = names(&String::from_utf8_lossy(&a.stdout));
    let r = Recover::new().args(["play", case.to_str().unwrap(), "-i", "inventory/lab.yml", "--host", "188", "--list-tasks"]).run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let got = names(&r.stdout);
    // ansible-playbook lists the static tasks; include_role's tasks appear when run, not listed.
    let got: Vec<String> = got.into_iter().filter(|n| want.contains(n)).collect();
    assert!(!want.is_empty());
    assert_eq!(got.iter().collect::<std::collections::BTreeSet<_>>(), want.iter().collect::<std::collections::BTreeSet<_>>(), "ansible-playbook: {want:?}");
    let from = Recover::new().args(["play", case.to_str().unwrap(), "-i", "inventory/lab.yml", "--host", "188", "--start-at-task", "web2*", "--output", "json"]).run();
    assert_eq!(from.code, 0, "{}{}", from.stdout, from.stderr);
    let ran: Vec<String> = from.task_events().iter().map(|e| e["task"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(ran.first().map(String::as_str), Some("web2 the port"), "{ran:?}");
    let none = Recover::new().args(["play", case.to_str().unwrap(), "-i", "inventory/lab.yml", "--start-at-task", "no such task"]).run();
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("no task named"), "{}", none.stderr);
}

/// What the system cases change on a host, read from inside it: the rtest packages and their
/// conffile, the accounts and groups named `rt*` (with their password field), the files of
/// their homes (path, mode, owner), and the state of the rtest units.
const SYSTEM_STATE: &str = "dpkg-query -W -f='${Package} ${db:Status-Abbrev} ${Version}\\n' 'rtest-*' 2>/dev/null; ls -l /etc/rtest-conf.conf 2>&1 | cut -c1-10; \
getent passwd | grep '^rt' ; getent group | grep '^rt'; getent shadow | grep '^rt' | cut -d: -f1,2; \
find /home /srv/rthomes -path '*/rt*' -printf '%p %m %u %g\\n' 2>/dev/null | sort; \
for u in rtest-svc rtest-other; do echo \"$u $(systemctl is-active $u) $(systemctl is-enabled $u 2>/dev/null)\"; done; \
for f in /etc/apt/sources.list.d/*; do echo \"$f $(stat -c %a $f)\"; cat $f; done; \
for u in root wooo; do echo \"crontab of $u:\"; crontab -l -u $u 2>&1; done; echo \"hostname $(hostname) $(cat /etc/hostname)\"; ls -l /etc/apt/keyrings 2>/dev/null | cut -c1-10; apt-key list 2>/dev/null | grep -E '^(/|pub|uid|sub)'; for f in /etc/cron.d/rt*; do echo \"$f $(stat -c %a $f)\"; cat $f; done 2>/dev/null; \
debconf-show rtest-dc 2>/dev/null | sort; dpkg --get-selections 'rtest-*' bash 2>/dev/null";

/// The package, service and user modules (issue 17) on real Debian systemd hosts: two hosts
/// booted by systemd-nspawn from one image (`scripts/nspawn-host`: real apt with a local
/// repository of test packages, real systemd, real shadow tools), ansible-playbook on one and
/// recover on the other, each case of `tests/system/` run under `--check --diff`, for real, and
/// again; after each run the statuses, the recap, what was printed and the host's state
/// (`SYSTEM_STATE`) must be the same.
#[test]
fn system_modules_match_ansible_core_on_systemd_hosts() {
    lab();
    let id = std::process::id();
    let (na, nr) = (format!("sa-{id}"), format!("sr-{id}"));
    let (ha, hr) = std::thread::scope(|s| {
        let a = s.spawn(|| Nspawn::up(&na, "127.0.0.132"));
        let r = s.spawn(|| Nspawn::up(&nr, "127.0.0.133"));
        (a.join().unwrap(), r.join().unwrap())
    });
    // The folder the users case moves a home into (usermod -m makes no parents).
    for h in [&ha, &hr] {
        h.sh("mkdir -p /srv/rthomes");
    }
    let tmp = tempfile::tempdir().unwrap();
    let host_key = std::fs::read_to_string(lab_root().join("ssh/host_ed25519.pub")).unwrap();
    let key = host_key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let kh = write(tmp.path(), "known_hosts", &format!("[127.0.0.132]:2222 {key}\n[127.0.0.133]:2222 {key}\n"));
    let host = |addr: &str| format!("      ansible_host: {addr}\n      ansible_port: 2222\n      ansible_user: wooo\n      ansible_ssh_private_key_file: {}\n      ansible_ssh_common_args: \"-o UserKnownHostsFile={}\"\n      ansible_python_interpreter: /usr/bin/python3\n", lab_root().join("ssh/id_ed25519").display(), kh.display());
    let inv = write(tmp.path(), "inv.yml", &format!("all:\n  hosts:\n    sa:\n{}    sr:\n{}", host("127.0.0.132"), host("127.0.0.133")));
    let t = Target { inventory: inv, ansible_host: "sa".into(), recover_host: "sr".into() };
    let mut cases: Vec<_> = std::fs::read_dir(repo().join("tests/system")).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "yml")).collect();
    cases.sort();
    if let Ok(only) = std::env::var("RECOVER_CASES") {
        cases.retain(|c| c.file_stem().is_some_and(|s| s.to_string_lossy().contains(only.as_str())));
    }
    assert!(!cases.is_empty());
    let root = std::path::Path::new("/tmp/rt");
    let mut failed = Vec::new();
    'cases: for case in &cases {
        for (label, mode) in [("--check --diff", &["--check", "--diff"][..]), ("--diff", &["--diff"][..]), ("again", &[][..])] {
            let before = hr.sh(SYSTEM_STATE);
            let want = ansible_outcome(&t, case, root, mode);
            let got = recover_outcome(&t, case, root, mode);
            let (sa, sr) = (ha.sh(SYSTEM_STATE), hr.sh(SYSTEM_STATE));
            if label.starts_with("--check") && sr != before {
                failed.push(format!("{} ({label}): check mode changed the host:\n  before: {before}\n  after:  {sr}", case.display()));
                continue 'cases;
            }
            if want.statuses.is_empty() || want != got || sa != sr {
                failed.push(format!("{} ({label}):\n  ansible-core: {:?} {:?} {:?} {:?}\n  recover:      {:?} {:?} {:?} {:?}\n  state by ansible-core:\n{sa}\n  state by recover:\n{sr}", case.display(), want.statuses, want.recap, want.printed, want.diffs, got.statuses, got.recap, got.printed, got.diffs));
                continue 'cases;
            }
        }
    }
    println!("{} passed, {} failed", cases.len() - failed.len(), failed.len());
    assert!(failed.is_empty(), "outcomes differ from ansible-core:\n{}", failed.join("\n"));
}

/// Issue 17: the package, service, user and system modules through the safety engine, on a
/// booted systemd host. Installing a package, creating a user, starting a unit, adding an APT
/// source, a key and a host key do not ask. Purging a package, removing a user with its home,
/// stopping a unit, deleting a group, removing an APT source, a key or a host key, renaming the
/// host and rebooting are refused with no terminal and no flag (exit 4, the host unchanged);
/// with --yes they run after a verified backup of what they change (the package's conffile,
/// the user's home, the sources file, the keyring, the known_hosts file, /etc/hostname).
#[test]
fn destructive_package_user_and_service_steps_are_backed_up_and_approved_and_harmless_ones_do_not_ask() {
    lab();
    let host = Nspawn::up(&format!("ss-{}", std::process::id()), "127.0.0.134");
    let tmp = tempfile::tempdir().unwrap();
    let host_key = std::fs::read_to_string(lab_root().join("ssh/host_ed25519.pub")).unwrap();
    let kh = write(tmp.path(), "known_hosts", &format!("[127.0.0.134]:2222 {}\n", host_key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")));
    let inv = write(
        tmp.path(),
        "inv.yml",
        &format!(
            "all:\n  hosts:\n    ss:\n      ansible_host: 127.0.0.134\n      ansible_port: 2222\n      ansible_user: wooo\n      ansible_ssh_private_key_file: {}\n      ansible_ssh_common_args: \"-o UserKnownHostsFile={}\"\n      recover_lock_dir: /tmp/recover-lock\n",
            lab_root().join("ssh/id_ed25519").display(),
            kh.display()
        ),
    );
    let play = |name: &str, tasks: &str| write(tmp.path(), &format!("{name}.yml"), &format!("- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n{tasks}"));
    let run = |pb: &std::path::Path, flags: &[&str]| {
        let r = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--output", "json"]).args(flags);
        let out = r.run();
        (out, r.run_log())
    };
    let harmless = play(
        "harmless",
        &[
            "    - apt: {name: rtest-conf, update_cache: true}\n".to_string(),
            "    - user: {name: rtfrank}\n".to_string(),
            "    - copy: {dest: /home/rtfrank/notes.txt, content: \"keep me\\n\"}\n".to_string(),
            "    - group: {name: rtgone}\n".to_string(),
            "    - systemd: {name: rtest-other, state: started}\n".to_string(),
            "    - deb822_repository: {name: rt-src, types: deb, uris: \"file:/srv/recover-debs/old\", suites: ./, trusted: true}\n".to_string(),
            format!("    - copy: {{src: {}, dest: /tmp/rt-key.asc}}\n", repo().join("tests/system/files/rt-key.asc").display()),
            "    - apt_key: {file: /tmp/rt-key.asc}\n".to_string(),
            format!("    - known_hosts: {{path: /tmp/kh, name: h.example.test, key: \"h.example.test {}\"}}\n", host_key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")),
        ]
        .concat(),
    );
    let (out, log) = run(&harmless, &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!log.iter().any(|e| e["event"] == "approval" || e["event"] == "backup"), "a harmless step asked: {log:?}");
    assert!(host.sh("cat /etc/rtest-conf.conf").contains("configuration"));
    let state = || host.sh(SYSTEM_STATE) + &host.sh("getent group rtgone; cat /home/rtfrank/notes.txt 2>&1; cat /tmp/kh 2>&1; cat /proc/sys/kernel/random/boot_id");
    let cases: [(&str, &str, &str); 9] = [
        ("purge", "    - apt: {name: rtest-conf, state: absent, purge: true}\n", "/etc/rtest-conf.conf"),
        ("userdel", "    - user: {name: rtfrank, state: absent, remove: true}\n", "/home/rtfrank"),
        ("stop", "    - systemd: {name: rtest-other, state: stopped}\n", ""),
        ("groupdel", "    - group: {name: rtgone, state: absent}\n", ""),
        ("source-removed", "    - deb822_repository: {name: rt-src, state: absent}\n", "/etc/apt/sources.list.d/rt-src.sources"),
        ("key-removed", "    - apt_key: {id: BB13115A742721D7, state: absent}\n", "/etc/apt/trusted.gpg"),
        ("host-key-removed", "    - known_hosts: {path: /tmp/kh, name: h.example.test, state: absent}\n", "/tmp/kh"),
        ("renamed", "    - hostname: {name: rt-renamed}\n", "/etc/hostname"),
        // Last: the host starts again from its image.
        ("reboot", "    - reboot: {reboot_timeout: 120}\n", ""),
    ];
    for (name, tasks, covered) in cases {
        let pb = play(name, tasks);
        let before = state();
        let (refused, _) = run(&pb, &[]);
        assert_eq!(refused.code, 4, "{name}: no terminal and no flag must refuse: {}{}", refused.stdout, refused.stderr);
        assert_eq!(state(), before, "{name}: a refused step changed the host");
        let (out, log) = run(&pb, &["--yes"]);
        assert_eq!(out.code, 0, "{name}: {}{}", out.stdout, out.stderr);
        assert_ne!(state(), before, "{name}: the step did not run with --yes");
        assert!(log.iter().any(|e| e["event"] == "approval" && e["decision"] == "run"), "{name}: no approval recorded: {log:?}");
        if !covered.is_empty() {
            let backup = log.iter().find(|e| e["event"] == "backup").unwrap_or_else(|| panic!("{name}: no verified backup: {log:?}"));
            let sources = backup["backup"]["sources"].as_array().cloned().unwrap_or_default();
            assert!(sources.iter().any(|s| s.as_str() == Some(covered)), "{name}: the backup covers {covered}: {backup}");
            let archive = backup["backup"]["archive"].as_str().unwrap();
            assert!(host.sh(&format!("tar -tzf {archive} 2>/dev/null || tar -tf {archive}")).contains(covered.trim_start_matches('/')), "{name}: {covered} is in the archive on the host");
        }
    }
    assert!(!host.sh("ls /etc/rtest-conf.conf 2>&1").contains("rtest-conf.conf\n") && !host.sh("ls -d /home/rtfrank 2>&1").starts_with("/home/rtfrank\n"));
}

/// `add_host` (issue 17): a host added in one play is a host of the next, reached over its own
/// connection with the variables it was given, as with ansible-playbook (without `--limit`,
/// which ansible-core applies to added hosts too: the module suite covers that case).
#[test]
fn a_host_added_by_add_host_runs_the_next_play_as_with_ansible_core() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let lock = lab_root().join("188/run/lock/recover-addhost");
    let play = write(
        tmp.path(),
        "p.yml",
        &format!(
            "- hosts: \"188\"\n  gather_facts: false\n  tasks:\n    - add_host: name=rt-copy groups=rtdyn ansible_host=127.0.0.188 ansible_user=ollama recover_lock_dir={}\n\
             - hosts: rtdyn\n  gather_facts: false\n  tasks:\n    - name: on the added host\n      command: echo \"{{{{ inventory_hostname }}}} {{{{ group_names }}}} {{{{ ansible_user }}}}\"\n      register: r\n    - debug: var=r.stdout\n",
            lock.display()
        ),
    );
    let want = Command::new("ansible-playbook")
        .args(["-i", repo().join("inventory/lab.yml").to_str().unwrap(), play.to_str().unwrap(), "-e", "ansible_python_interpreter=/usr/bin/python3"])
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&want.stdout).into_owned();
    assert!(want.contains("\"r.stdout\": \"rt-copy ['rtdyn'] ollama\""), "{want}");
    let run = Recover::new().args(["play", play.to_str().unwrap(), "-i", "inventory/lab.yml", "--output", "json", "--yes"]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let out: Vec<_> = run.events().into_iter().filter(|e| e["event"] == "task" && e["host"] == "rt-copy" && e["output"].is_object()).map(|e| e["output"].clone()).collect();
    assert_eq!(out, vec![serde_json::json!({"r.stdout": "rt-copy ['rtdyn'] ollama"})], "{}", run.stdout);
    assert_eq!(run.recap()["rt-copy"]["changed"], 1);
}

/// A play's `port` (issue 16): hosts whose variables name no port are reached on it, as with
/// ansible-playbook; a host's `ansible_port` would win. A `port` on a task is refused at load.
#[test]
fn a_plays_port_reaches_hosts_without_a_port_of_their_own_as_with_ansible_core() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let inv = write(
        tmp.path(),
        "inv.yml",
        &format!(
            "all:\n  hosts:\n    noport:\n      ansible_host: 127.0.0.188\n      ansible_user: ollama\n      ansible_ssh_private_key_file: {}\n      ansible_ssh_common_args: \"-o UserKnownHostsFile={}\"\n      recover_lock_dir: {}\n",
            lab_root().join("ssh/id_ed25519").display(),
            lab_root().join("ssh/known_hosts").display(),
            lab_root().join("188/run/lock/recover-port").display()
        ),
    );
    let play = write(tmp.path(), "p.yml", "- hosts: all\n  gather_facts: false\n  port: 2222\n  tasks:\n    - command: echo reached\n      register: r\n    - debug: var=r.stdout\n");
    let want = Command::new("ansible-playbook").args(["-i", inv.to_str().unwrap(), play.to_str().unwrap(), "-e", "ansible_python_interpreter=/usr/bin/python3"]).env("ANSIBLE_NOCOLOR", "1").output().unwrap();
    assert!(String::from_utf8_lossy(&want.stdout).contains("\"r.stdout\": \"reached\""), "{}", String::from_utf8_lossy(&want.stdout));
    let run = Recover::new().args(["play", play.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--output", "json", "--yes"]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.events().iter().any(|e| e["output"] == serde_json::json!({"r.stdout": "reached"})), "{}", run.stdout);
    let task_port = write(tmp.path(), "t.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: echo x\n      port: 2222\n");
    let run = Recover::new().args(["play", task_port.to_str().unwrap(), "-i", inv.to_str().unwrap()]).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("t.yml:5:13") && run.stderr.contains("`port` on a block or task"), "{}", run.stderr);
}

/// A play's `order:` (issue 16): its hosts run in the order ansible-playbook runs them
/// (inventory, reverse_inventory, sorted, reverse_sorted; shuffle gives each host once), seen
/// through `serial: 1`, where each batch is one host.
#[test]
fn a_plays_order_runs_its_hosts_as_ansible_core_does() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let host = |name: &str| {
        format!(
            "    {name}:\n      ansible_host: 127.0.0.188\n      ansible_port: 2222\n      ansible_user: ollama\n      ansible_ssh_private_key_file: {}\n      ansible_ssh_common_args: \"-o UserKnownHostsFile={}\"\n      recover_lock_dir: {}\n",
            lab_root().join("ssh/id_ed25519").display(),
            lab_root().join("ssh/known_hosts").display(),
            lab_root().join(format!("188/run/lock/recover-order-{name}")).display()
        )
    };
    let names = ["mid", "zeta", "alpha", "beta"];
    let inv = write(tmp.path(), "inv.yml", &format!("all:\n  hosts:\n{}", names.iter().map(|n| host(n)).collect::<String>()));
    for order in ["inventory", "reverse_inventory", "sorted", "reverse_sorted", "shuffle"] {
        let play = write(tmp.path(), &format!("{order}.yml"), &format!("- hosts: all\n  gather_facts: false\n  serial: 1\n  order: {order}\n  tasks:\n    - debug: msg=\"{{{{ inventory_hostname }}}}\"\n"));
        let want = Command::new("ansible-playbook").args(["-i", inv.to_str().unwrap(), play.to_str().unwrap()]).env("ANSIBLE_NOCOLOR", "1").output().unwrap();
        let want: Vec<String> = String::from_utf8_lossy(&want.stdout).lines().filter_map(|l| l.strip_prefix("ok: [")).filter_map(|l| l.split(']').next()).map(str::to_string).collect();
        let run = Recover::new().args(["play", play.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--output", "json"]).run();
        assert_eq!(run.code, 0, "{order}: {}{}", run.stdout, run.stderr);
        let got: Vec<String> = run.events().iter().filter(|e| e["event"] == "task").filter_map(|e| e["host"].as_str().map(str::to_string)).collect();
        if order == "shuffle" {
            let (mut w, mut g) = (want.clone(), got.clone());
            w.sort();
            g.sort();
            assert_eq!(g, w, "shuffle runs each host once");
        } else {
            assert_eq!(got, want, "order: {order}");
        }
    }
    let bad = write(tmp.path(), "bad.yml", "- hosts: all\n  gather_facts: false\n  order: random\n  tasks: []\n");
    let run = Recover::new().args(["play", bad.to_str().unwrap(), "-i", inv.to_str().unwrap()]).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("bad.yml:3:10") && run.stderr.contains("`order` must be one of"), "{}", run.stderr);
}

/// What `debug` printed, as one text (a string as it is, nothing as empty, other values as JSON).
fn printed_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(m) => m.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What `debug` printed and how each task ended, per task and host, and the recap's ok,
/// changed, failed and skipped per host, from ansible-playbook's default output.
fn ansible_multihost(play: &std::path::Path) -> (Vec<(String, String, String, String)>, serde_json::Value) {
    let out = Command::new("sh")
        .args(["-c", "exec ansible-playbook -i \"$1\" \"$2\" -e ansible_python_interpreter=/usr/bin/python3 2>&1", "sh", repo().join("inventory/lab.yml").to_str().unwrap(), play.to_str().unwrap()])
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut rows = Vec::new();
    let mut task = String::new();
    let mut block: Option<(String, String, String)> = None;
    for line in text.lines() {
        if let Some((h, s, b)) = &mut block {
            b.push_str(line);
            b.push('\n');
            if line == "}" {
                let v: serde_json::Value = serde_json::from_str(b).unwrap_or_default();
                rows.push((task.clone(), h.clone(), s.clone(), printed_text(&v["msg"])));
                block = None;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("TASK [").or_else(|| line.strip_prefix("RUNNING HANDLER [")) {
            task = rest.rsplit_once(']').map(|(n, _)| n.to_string()).unwrap_or_default();
            continue;
        }
        let Some((s, rest)) = [("ok: [", "ok"), ("changed: [", "changed"), ("fatal: [", "failed"), ("skipping: [", "skipped")].iter().find_map(|(p, s)| line.strip_prefix(p).map(|r| (*s, r))) else { continue };
        let host = rest.split(']').next().unwrap_or_default().split(" -> ").next().unwrap_or_default().to_string();
        if line.ends_with("=> {") {
            block = Some((host, s.to_string(), "{\n".into()));
        } else {
            rows.push((task.clone(), host, s.to_string(), String::new()));
        }
    }
    rows.sort();
    let recap = text.lines().skip_while(|l| !l.starts_with("PLAY RECAP")).skip(1).take_while(|l| !l.trim().is_empty());
    let stats = recap
        .filter_map(|l| {
            let (h, counts) = l.split_once(':')?;
            let n = |k: &str| counts.split_whitespace().find_map(|w| w.strip_prefix(&format!("{k}=")).and_then(|n| n.parse::<u64>().ok())).unwrap_or(u64::MAX);
            Some((h.trim().to_string(), serde_json::json!([n("ok"), n("changed"), n("failed"), n("skipped")])))
        })
        .collect();
    (rows, serde_json::Value::Object(stats))
}

/// Several hosts in one play (issue 16), each case of `tests/multihost/` run by
/// ansible-playbook and by recover on lab hosts 188 and 110: the linear strategy's steps (a
/// task sees what the tasks before it set on every host, however slow), `hostvars` of set_fact,
/// register and include_vars, `delegate_facts`, `run_once`. Compared: how each task ended and
/// what it printed, per host, and the recap.
#[test]
fn several_hosts_in_step_see_each_others_variables_as_with_ansible_core() {
    lab();
    let mut cases: Vec<_> = std::fs::read_dir(repo().join("tests/multihost")).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "yml")).collect();
    cases.sort();
    assert!(!cases.is_empty());
    let mut failed = Vec::new();
    for case in &cases {
        let (want, want_recap) = ansible_multihost(case);
        let run = Recover::new().args(["play", case.to_str().unwrap(), "-i", "inventory/lab.yml", "--output", "json", "--yes"]).run();
        let mut got: Vec<(String, String, String, String)> = run
            .task_events()
            .iter()
            .filter(|e| !e["task"].as_str().unwrap_or_default().starts_with("include"))
            .map(|e| {
                let status = e["status"].as_str().unwrap_or_default().to_lowercase();
                (e["task"].as_str().unwrap_or_default().to_string(), e["host"].as_str().unwrap_or_default().to_string(), status, printed_text(&e["output"]))
            })
            .collect();
        got.sort();
        let recap: serde_json::Map<String, serde_json::Value> = run.recap().as_object().into_iter().flatten().map(|(h, s)| (h.clone(), serde_json::json!([s["ok"], s["changed"], s["failed"], s["skipped"]]))).collect();
        if want.is_empty() || got != want || serde_json::Value::Object(recap.clone()) != want_recap {
            failed.push(format!("{}:\n  ansible-core: {want:?} {want_recap}\n  recover:      {got:?} {recap:?}\n{}", case.display(), run.stderr));
        }
    }
    println!("{} passed, {} failed", cases.len() - failed.len(), failed.len());
    assert!(failed.is_empty(), "outcomes differ from ansible-core:\n{}", failed.join("\n"));
}
