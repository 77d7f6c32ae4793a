//! Differential conformance with ansible-core itself (issue 15): every template case in
//! `tests/conformance/templates/` is rendered by Ansible's `template` module (one
//! `ansible-playbook` run, `-c local`) and by `recover render`, with the variables of
//! `tests/conformance/vars.yml`, and compared byte for byte; every inventory in
//! `tests/conformance/inventories/` (files and folders, plus several -i and a host list) is listed by
//! `ansible-inventory --list`, `--graph`, `--graph --vars`, `--list --yaml` and `--host H` and by
//! `recover inventory`, byte for byte. A case Ansible refuses passes only if recover refuses it
//! too. A difference kept on purpose is listed in `known-differences.txt` (`name: reason`), and
//! the suite checks each listed one still differs. ansible-core comes from PyPI (`.ci/run`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn require_ansible() {
    assert!(
        have("ansible-playbook") && have("ansible-inventory"),
        "ansible-core is the oracle of this suite: `python3 -m pip install ansible-core` (.ci/run installs it)"
    );
}

/// The Python that has ansible-core (the one `python3` on PATH runs), for the local connection.
fn python() -> String {
    let out = Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ansible_env(cmd: &mut Command) -> &mut Command {
    cmd.env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_PYTHON_INTERPRETER", python())
        .env("ANSIBLE_LOCALHOST_WARNING", "False")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
        .env("ANSIBLE_DEPRECATION_WARNINGS", "False")
        .env("RECOVER_CONFORMANCE_ENV", "envval")
        .env("RECOVER_CONFORMANCE_DIR", dir())
}

fn recover(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recover")).args(args).env("RECOVER_CONFORMANCE_ENV", "envval").env("RECOVER_CONFORMANCE_DIR", dir()).env("NO_COLOR", "1").current_dir(dir()).output().unwrap();
    (out.status.success(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `name: reason` lines (comments with #).
fn known() -> BTreeMap<String, String> {
    std::fs::read_to_string(dir().join("known-differences.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(':').map(|(a, b)| (a.trim().to_string(), b.trim().to_string())))
        .collect()
}

fn cases(sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir().join(sub)).unwrap().flatten().map(|e| e.path()).collect();
    v.sort();
    v
}

/// Compares, prints `N passed, M failed`, and fails on any difference not listed as known,
/// or any known one that no longer differs.
fn judge(what: &str, results: Vec<(String, Option<String>)>) {
    let known = known();
    let mut failed = Vec::new();
    let mut passed = 0;
    for (name, diff) in &results {
        match (diff, known.get(name)) {
            (None, None) => passed += 1,
            (Some(_), Some(_)) => passed += 1,
            (None, Some(reason)) => failed.push(format!("{name}: listed as a known difference ({reason}) but now identical: remove it from known-differences.txt")),
            (Some(d), None) => failed.push(format!("{name}: {d}")),
        }
    }
    eprintln!("{what}: {passed} passed, {} failed", failed.len());
    println!("{passed} passed, {} failed", failed.len());
    assert!(failed.is_empty(), "{what} differs from ansible-core:\n{}", failed.join("\n\n"));
}

#[test]
fn templates_render_byte_identical_to_ansible_core() {
    require_ansible();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let templates: Vec<PathBuf> = cases("templates").into_iter().filter(|p| p.is_file()).collect();
    assert!(templates.len() >= 150, "{} template cases", templates.len());
    let list: Vec<String> = templates.iter().map(|p| p.display().to_string()).collect();
    let play = tmp.path().join("play.yml");
    std::fs::write(
        &play,
        format!(
            "- hosts: localhost\n  gather_facts: false\n  vars_files: [{}]\n  tasks:\n    - template: {{src: \"{{{{ item }}}}\", dest: \"{}/{{{{ item | basename }}}}.out\"}}\n      loop: {}\n      ignore_errors: true\n",
            dir().join("vars.yml").display(),
            out.display(),
            serde_json::to_string(&list).unwrap()
        ),
    )
    .unwrap();
    let ran = ansible_env(Command::new("ansible-playbook").args(["-i", "localhost,", "-c", "local", play.to_str().unwrap()])).output().unwrap();
    assert!(ran.status.success(), "ansible-playbook failed:\n{}", String::from_utf8_lossy(&ran.stdout));
    let vars = dir().join("vars.yml");
    let results = templates
        .iter()
        .map(|t| {
            let name = t.file_name().unwrap().to_string_lossy().into_owned();
            let dest = out.join(format!("{name}.out"));
            let (ok, got, err) = recover(&["render", t.to_str().unwrap(), "--dest", dest.to_str().unwrap(), "-e", &format!("@{}", vars.display())]);
            let want = std::fs::read(out.join(format!("{name}.out"))).ok();
            let diff = match (want, ok) {
                (None, false) => None,
                (None, true) => Some(format!("ansible-core refuses it, recover rendered {:?}", String::from_utf8_lossy(&got))),
                (Some(_), false) => Some(format!("recover refused it: {}", err.trim())),
                (Some(w), true) if w == got => None,
                (Some(w), true) => Some(format!("ansible-core: {:?}\nrecover:      {:?}", String::from_utf8_lossy(&w), String::from_utf8_lossy(&got))),
            };
            (name, diff)
        })
        .collect();
    judge("templates", results);
}

/// ansible-inventory exits 0 when a source fails to parse (it warns and goes on without it);
/// such a source counts as refused.
fn ansible_refused(out: &std::process::Output) -> bool {
    let err = String::from_utf8_lossy(&out.stderr);
    !out.status.success() || err.contains("Unable to parse") || err.contains("Failed to parse")
}

/// `ansible-inventory` and `recover inventory` with the same -i arguments and mode: None when
/// they print the same bytes, or both refuse the sources.
fn compare_inventory(dash_i: &[&str], mode: &[&str]) -> Option<String> {
    let a = ansible_env(Command::new("ansible-inventory").args(dash_i).args(mode)).output().unwrap();
    let mut args = vec!["inventory"];
    args.extend(dash_i);
    args.extend(mode);
    let (ok, got, err) = recover(&args);
    match (!ansible_refused(&a), ok) {
        (false, false) => None,
        (true, false) => Some(format!("recover refused it: {}", err.trim())),
        (false, true) => Some(format!("ansible-inventory refuses it, recover did not:\n{}", String::from_utf8_lossy(&a.stderr))),
        (true, true) if a.stdout == got => None,
        (true, true) => Some(format!("ansible-inventory:\n{}\nrecover:\n{}", String::from_utf8_lossy(&a.stdout), String::from_utf8_lossy(&got))),
    }
}

#[test]
fn inventories_list_and_graph_byte_identical_to_ansible_inventory() {
    require_ansible();
    let invs = cases("inventories");
    // Each case is the -i arguments: one file or folder of inventories/, plus sources that are
    // not one path: several -i, a host list.
    let mut sources: Vec<(String, Vec<String>)> = invs.iter().map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), vec![p.display().to_string()])).collect();
    let at = |n: &str| dir().join("inventories").join(n).display().to_string();
    sources.push(("two sources (ini-children.ini, toml-basic.toml)".into(), vec![at("ini-children.ini"), at("toml-basic.toml")]));
    sources.push(("two sources (toml-basic.toml, ini-children.ini)".into(), vec![at("toml-basic.toml"), at("ini-children.ini")]));
    sources.push(("two sources (yaml-nested.yml, constructed-basic/90-constructed.yml)".into(), vec![at("yaml-nested.yml"), at("constructed-basic/90-constructed.yml")]));
    sources.push(("host list".into(), vec!["web1.test,web2.test:2222, 127.0.0.9,".into()]));
    // Each source's comparisons on a thread of its own, a few at a time: ansible-inventory takes
    // about a second to start.
    let one_source = |name: &str, paths: &[String]| -> Vec<(String, Option<String>)> {
        let mut dash_i: Vec<&str> = Vec::new();
        for p in paths {
            dash_i.extend(["-i", p.as_str()]);
        }
        let mut results = Vec::new();
        for mode in [&["--list"][..], &["--graph"], &["--graph", "--vars"], &["--list", "--yaml"]] {
            results.push((format!("{name} {}", mode.join(" ")), compare_inventory(&dash_i, mode)));
        }
        // `--host H` (and with --yaml) for the last host ansible-inventory lists.
        let listed = ansible_env(Command::new("ansible-inventory").args(&dash_i).arg("--list")).output().unwrap();
        let hosts: Vec<String> = serde_json::from_slice::<serde_json::Value>(&listed.stdout)
            .ok()
            .and_then(|v| {
                let mut hs: Vec<String> = v.as_object()?.values().filter_map(|g| g.get("hosts")?.as_array().cloned()).flatten().filter_map(|h| h.as_str().map(str::to_string)).collect();
                hs.sort();
                Some(hs)
            })
            .unwrap_or_default();
        if let Some(h) = hosts.last() {
            for mode in [&["--host", h.as_str()][..], &["--host", h.as_str(), "--yaml"]] {
                results.push((format!("{name} {}", mode.join(" ")), compare_inventory(&dash_i, mode)));
            }
        }
        results
    };
    let mut results = Vec::new();
    for chunk in sources.chunks(3) {
        let done: Vec<Vec<(String, Option<String>)>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|(name, paths)| s.spawn(|| one_source(name, paths))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        results.extend(done.into_iter().flatten());
    }
    assert!(invs.len() >= 30, "{} inventories", invs.len());
    judge("inventories", results);
}

/// A loopback HTTP server for the `url` lookup: `/lines` three lines, `/hdr` the X-Test header it
/// got, `/auth` the Authorization header, anything else 404. Serves until the test ends.
fn serve_loopback() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut headers = BTreeMap::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_lowercase(), v.trim().to_string());
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, body) = match path.as_str() {
                "/lines" => ("200 OK", "one\ntwo\nthree\n".to_string()),
                "/hdr" => ("200 OK", headers.get("x-test").cloned().unwrap_or_default()),
                "/auth" => ("200 OK", headers.get("authorization").cloned().unwrap_or_default()),
                _ => ("404 Not Found", "no such page".to_string()),
            };
            let mut conn = conn;
            let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    port
}

#[test]
fn url_lookup_against_a_loopback_server_matches_ansible_core() {
    require_ansible();
    let port = serve_loopback();
    let tmp = tempfile::tempdir().unwrap();
    let u = format!("http://127.0.0.1:{port}");
    let template = tmp.path().join("url.j2");
    std::fs::write(
        &template,
        format!(
            "{{{{ lookup('url', '{u}/lines') }}}}\n\
             {{{{ lookup('url', '{u}/lines', split_lines=False) }}}}\n\
             {{{{ query('url', '{u}/lines') | length }}}} {{{{ query('url', '{u}/lines', '{u}/lines') | length }}}}\n\
             {{{{ lookup('url', '{u}/hdr', headers={{'X-Test': 'hello'}}) }}}}\n\
             {{{{ lookup('url', '{u}/auth', username='ops', password='s3cret', force_basic_auth=True) }}}}\n\
             {{{{ lookup('url', '{u}/lines', wantlist=True) | last }}}}\n"
        ),
    )
    .unwrap();
    let out = tmp.path().join("url.out");
    let play = tmp.path().join("play.yml");
    std::fs::write(&play, format!("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - template: {{src: \"{}\", dest: \"{}\"}}\n", template.display(), out.display())).unwrap();
    let ran = ansible_env(Command::new("ansible-playbook").args(["-i", "localhost,", "-c", "local", play.to_str().unwrap()])).output().unwrap();
    assert!(ran.status.success(), "ansible-playbook failed:\n{}", String::from_utf8_lossy(&ran.stdout));
    let want = std::fs::read_to_string(&out).unwrap();
    let (ok, got, err) = recover(&["render", template.to_str().unwrap()]);
    assert!(ok, "recover render failed: {err}");
    assert_eq!(String::from_utf8_lossy(&got), want, "the url lookup differs from ansible-core's");
    assert!(want.contains("one,two,three") && want.contains("hello") && want.contains("Basic "), "the server was really asked: {want}");
    // An HTTP error is a clear error, as Ansible's is.
    let missing = tmp.path().join("missing.j2");
    std::fs::write(&missing, format!("{{{{ lookup('url', '{u}/nope') }}}}\n")).unwrap();
    let (ok, _, err) = recover(&["render", missing.to_str().unwrap()]);
    assert!(!ok && err.contains("404"), "{err}");
}

#[test]
fn role_templates_include_and_import_as_ansible_core_finds_them() {
    require_ansible();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let role = root.join("roles/web");
    for (path, text) in [
        ("roles/web/templates/site.conf.j2", "{% include 'parts/head.j2' %}\n{% from 'parts/macros.j2' import listen %}\n{{ listen(port) }}\n{% include 'shared.j2' %}\n"),
        ("roles/web/templates/parts/head.j2", "# {{ template_path | basename }} for {{ name }}\n"),
        ("roles/web/templates/parts/macros.j2", "{% macro listen(p) %}listen {{ p }};{% endmacro %}\n"),
        ("templates/shared.j2", "shared from the playbook's templates/ ({{ port + 1 }})\n"),
    ] {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    std::fs::create_dir_all(role.join("tasks")).unwrap();
    let out = root.join("site.conf");
    std::fs::write(role.join("tasks/main.yml"), format!("- template: {{src: site.conf.j2, dest: \"{}\"}}\n", out.display())).unwrap();
    std::fs::write(root.join("play.yml"), "- hosts: localhost\n  gather_facts: false\n  vars: {port: 8080, name: web01}\n  roles: [web]\n").unwrap();
    let ran = ansible_env(Command::new("ansible-playbook").args(["-i", "localhost,", "-c", "local", "play.yml"]).current_dir(root)).output().unwrap();
    assert!(ran.status.success(), "ansible-playbook failed:\n{}", String::from_utf8_lossy(&ran.stdout));
    let want = std::fs::read_to_string(&out).unwrap();
    let got = Command::new(env!("CARGO_BIN_EXE_recover"))
        .args(["render", "roles/web/templates/site.conf.j2", "--dest", out.to_str().unwrap(), "-e", r#"{"port": 8080, "name": "web01"}"#])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(String::from_utf8_lossy(&got.stdout), want);
    assert!(want.contains("listen 8080;") && want.contains("(8081)"), "{want}");
}

#[test]
fn inventory_hostnames_and_host_context_match_ansible_core() {
    require_ansible();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::write(root.join("hosts.ini"), "[web]\nw1 http_port=80\nw2\n[db]\nd1\nw2\n[prod:children]\nweb\n").unwrap();
    let template = root.join("hosts.j2");
    std::fs::write(
        &template,
        "{{ lookup('inventory_hostnames', 'web:!w2') }} {{ query('inventory_hostnames', 'all') }} {{ query('inventory_hostnames', 'w*') }}\n\
         {{ lookup('inventory_hostnames', 'web:&db') }} {{ query('inventory_hostnames', 'prod,d1') }}\n\
         {{ inventory_hostname }} {{ group_names }} {{ groups['prod'] }} {{ groups['all'] }} {{ http_port }}\n\
         {{ query('inventory_hostnames', 'web[0]') }} {{ query('inventory_hostnames', 'all[1:2]') }} {{ query('inventory_hostnames', 'all[-1]') }} {{ query('inventory_hostnames', 'all[1:]') }} {{ query('inventory_hostnames', 'web[0]:db') }}\n",
    )
    .unwrap();
    let out = root.join("hosts.out");
    std::fs::write(root.join("play.yml"), format!("- hosts: w1\n  gather_facts: false\n  tasks:\n    - template: {{src: \"{}\", dest: \"{}\"}}\n", template.display(), out.display())).unwrap();
    let ran = ansible_env(Command::new("ansible-playbook").args(["-i", "hosts.ini", "-c", "local", "play.yml"]).current_dir(root)).output().unwrap();
    assert!(ran.status.success(), "ansible-playbook failed:\n{}", String::from_utf8_lossy(&ran.stdout));
    let want = std::fs::read_to_string(&out).unwrap();
    let got = Command::new(env!("CARGO_BIN_EXE_recover")).args(["render", "hosts.j2", "-i", "hosts.ini", "--host", "w1"]).current_dir(root).output().unwrap();
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(String::from_utf8_lossy(&got.stdout), want);
}
