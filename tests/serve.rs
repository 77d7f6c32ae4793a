//! Issue 35: `recover serve`, the cold-start board in a browser. A real server on loopback, the
//! loopback lab's real gates, and Debian's real `chromium` (headless) loading the pages: the
//! lab's broken gates show BLOCKED with the right first blocked gate and its suggestion; the
//! board updates live over server-sent events (in the browser, with no reload); no page breaks
//! the Content-Security-Policy or logs a console error; the pages fit a phone (375 px); a
//! hostile run log line is shown as such; a URL cannot name a file; 20 watchers add no probe
//! runs; a non-loopback address without TLS is refused. Screenshots go to target/serve-shots/.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `recover serve` of the test's own, stopped by its PID on drop.
struct Server {
    child: Child,
    port: u32,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(r: &Recover, extra: &[&str]) -> Server {
        let port = free_port("127.0.0.1");
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = r.command();
        cmd.args(["serve", "--listen", &listen]).args(extra).stdout(Stdio::null()).stderr(Stdio::piped()).stdin(Stdio::null());
        let child = cmd.spawn().expect("start recover serve");
        let s = Server { child, port };
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", port as u16)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(30), "recover serve did not listen on {listen}");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
    /// Status, headers (lower-case names) and body of a GET.
    fn get(&self, path: &str) -> (u16, Vec<(String, String)>, String) {
        http(self.port, &format!("GET {path}"), "", "")
    }
    fn passes(&self) -> u64 {
        let (_, _, body) = self.get("/board.json");
        serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["passes"].as_u64()).unwrap_or(0)
    }
    fn wait_passes(&self, n: u64) {
        let t = Instant::now();
        while self.passes() < n {
            assert!(t.elapsed() < Duration::from_secs(120), "no gate pass in time");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A real run (run logs are written by real runs) that changes nothing on the lab: a command
/// that reports a change, a debug, a loop.
fn small_run(r: Recover, dir: &Path) -> String {
    let play = write(dir, "small.yml", "- hosts: '188'\n  gather_facts: false\n  tasks:\n    - name: say hello\n      command: echo hello\n    - name: items\n      debug:\n        msg: \"{{ item }}\"\n      loop: [a, b]\n");
    let run = r.args(["play", play.to_str().unwrap(), "-i", "inventory/lab.yml"]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    run.stdout.lines().find_map(|l| l.trim().strip_prefix("run log: ")).and_then(|p| Path::new(p).file_stem()).map(|n| n.to_string_lossy().rsplit('-').next().unwrap_or_default().to_string()).expect("the run log's name")
}

fn shots() -> PathBuf {
    let d = repo().join("target/serve-shots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Headless chromium driven over its DevTools protocol (a page of its own, its profile in a
/// temporary folder, stopped by its PID on drop).
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: tungstenite::WebSocket<TcpStream>,
    next: u64,
    /// Console errors, uncaught exceptions and CSP refusals seen so far.
    errors: Vec<String>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn open(url: &str, width: u32) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let port = free_port("127.0.0.1");
        let child = Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
            .arg(format!("--remote-debugging-port={port}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromium (apt-get install chromium)");
        // The page's DevTools socket, once the browser listens.
        let t = Instant::now();
        let ws_url = loop {
            let list = http_get(port, "/json/list").unwrap_or_default();
            if let Some(u) = serde_json::from_str::<serde_json::Value>(&list).ok().and_then(|v| v.as_array().and_then(|a| a.iter().find(|p| p["type"] == "page").and_then(|p| p["webSocketDebuggerUrl"].as_str().map(str::to_string)))) {
                break u;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "chromium's DevTools did not answer");
            std::thread::sleep(Duration::from_millis(100));
        };
        let stream = TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
        let (ws, _) = tungstenite::client(ws_url.as_str(), stream).expect("DevTools websocket");
        let mut b = Browser { child, _profile: profile, ws, next: 0, errors: Vec::new() };
        b.call("Runtime.enable", serde_json::json!({}));
        b.call("Log.enable", serde_json::json!({}));
        b.call("Page.enable", serde_json::json!({}));
        b.call("Emulation.setDeviceMetricsOverride", serde_json::json!({"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500}));
        b.call("Page.navigate", serde_json::json!({"url": url}));
        b.wait_for("document.readyState === 'complete'", Duration::from_secs(20));
        b
    }
    /// Sends a command and returns its result, noting every console error on the way.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next += 1;
        let id = self.next;
        self.ws.send(tungstenite::Message::Text(serde_json::json!({"id": id, "method": method, "params": params}).to_string().into())).unwrap();
        loop {
            let msg = self.ws.read().expect("DevTools message");
            let Ok(text) = msg.to_text() else { continue };
            let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            match v["method"].as_str() {
                Some("Runtime.exceptionThrown") => self.errors.push(v["params"]["exceptionDetails"].to_string()),
                Some("Runtime.consoleAPICalled") if v["params"]["type"] == "error" => self.errors.push(v["params"]["args"].to_string()),
                Some("Log.entryAdded") if v["params"]["entry"]["level"] == "error" => self.errors.push(v["params"]["entry"]["text"].to_string()),
                _ => {}
            }
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }
    fn eval(&mut self, expr: &str) -> serde_json::Value {
        self.call("Runtime.evaluate", serde_json::json!({"expression": expr, "returnByValue": true}))["result"]["value"].clone()
    }
    fn wait_for(&mut self, expr: &str, limit: Duration) {
        let t = Instant::now();
        while self.eval(expr) != serde_json::json!(true) {
            assert!(t.elapsed() < limit, "{expr} did not hold within {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", serde_json::json!({"format": "png", "captureBeyondViewport": true}));
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
    /// Whether the page is wider than its viewport (a phone would scroll sideways).
    fn overflows(&mut self) -> bool {
        self.eval("document.documentElement.scrollWidth > window.innerWidth + 1") == serde_json::json!(true)
    }
}

fn http_get(port: u32, path: &str) -> Option<String> {
    try_http(port, &format!("GET {path}"), "", "").map(|r| r.2).filter(|b| !b.is_empty())
}

/// One HTTP/1.1 request (`line` is `METHOD PATH`; `headers` end each with CRLF): status,
/// headers (lower-case names) and body. The body is Content-Length bytes (DevTools keeps the
/// connection open), else all there is.
fn http(port: u32, line: &str, headers: &str, body: &str) -> (u16, Vec<(String, String)>, String) {
    try_http(port, line, headers, body).expect("connect to the server")
}

/// [`http`], `None` when nothing listens yet.
fn try_http(port: u32, line: &str, headers: &str, body: &str) -> Option<(u16, Vec<(String, String)>, String)> {
    let s = TcpStream::connect(("127.0.0.1", port as u16)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(&s, "{line} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    let _ = r.read_line(&mut status);
    let code = status.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut head = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            head.push((k.trim().to_lowercase(), v.trim().to_string()));
        }
    }
    let mut raw = Vec::new();
    match head.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()) {
        Some(n) => {
            raw.resize(n, 0);
            let _ = r.read_exact(&mut raw);
        }
        None => {
            let _ = r.read_to_end(&mut raw);
        }
    }
    Some((code, head, String::from_utf8_lossy(&raw).into_owned()))
}

#[test]
fn a_non_loopback_listen_without_tls_is_refused_before_anything_is_read() {
    for addr in ["0.0.0.0:18471", "192.0.2.7:18471", "[::]:18471"] {
        let r = Recover::new().args(["serve", "--listen", addr]).run();
        assert_eq!(r.code, 1, "{addr}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("--tls-cert") && r.stderr.contains("not a loopback address"), "{}", r.stderr);
    }
    // --tls-cert without --tls-key is a usage error.
    let r = Recover::new().args(["serve", "--listen", "0.0.0.0:18471", "--tls-cert", "x.pem"]).run();
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--tls-key"), "{}", r.stderr);
}

#[test]
fn the_board_shows_the_labs_blocked_gates_live_in_a_browser_and_every_page_is_safe() {
    lab();
    let state = tempfile::tempdir().unwrap();
    let r = || Recover::new().env("RECOVER_STATE_DIR", state.path().to_str().unwrap());
    // Runs in this state folder: one real run, and a run log with a hostile line in it.
    let real = small_run(r(), state.path());
    let runs = state.path().join("runs");
    let hostile = runs.join("20200101T000000.000000Z-0badc0ffee00.jsonl");
    std::fs::write(
        &hostile,
        "{\"event\":\"run_start\",\"run_id\":\"0badc0ffee00\",\"playbook\":\"<img src=x onerror=alert(1)>.yml\",\"check\":false,\"operator\":\"<b>mallory</b>\",\"command\":[\"recover\"],\"at\":\"2020-01-01T00:00:00Z\"}\n<script>alert('line')</script>\n{\"event\":\"task\",\"host\":\"188\",\"task\":\"<svg onload=alert(2)>\",\"status\":\"failed\",\"msg\":\"\\u001b[31mred\\u001b[0m </td></tr><script>x()</script>\",\"at\":\"2020-01-01T00:00:01Z\"}\n",
    )
    .unwrap();

    let s = Server::start(&r(), &["--interval", "2"]);
    s.wait_passes(1);

    // The board: the lab's broken gates BLOCKED, the first blocked gate with its suggestion.
    let (code, headers, body) = s.get("/");
    assert_eq!(code, 200);
    let h = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert!(h("content-security-policy").contains("script-src 'self'") && h("content-security-policy").contains("default-src 'none'"), "{headers:?}");
    assert_eq!(h("x-content-type-options"), "nosniff");
    let check = Recover::new().args(["-i", "inventory/lab.yml", "check", "--output", "json"]).run();
    let report: serde_json::Value = serde_json::from_str(check.stdout.lines().next().unwrap()).unwrap();
    let first = report["report"]["first_blocked"].as_str().expect("the lab has a blocked gate").to_string();
    assert!(body.contains(&format!("Fix first: {first}")), "{body}");
    let suggest = report["report"]["gates"].as_array().unwrap().iter().find(|g| g["name"] == first.as_str()).and_then(|g| g["probes"].as_array().unwrap().iter().filter(|p| p["ok"] == false).find_map(|p| p["suggest"].as_str())).unwrap().to_string();
    assert!(body.contains(&format!("data-copy=\"{}\"", suggest.replace('"', "&#34;"))), "{suggest} not on the board");
    assert!(body.contains(&format!("data-phase=\"{first}\" data-status=\"BLOCKED\"")), "{body}");

    // Every page: escaped data, the CSP, no path out of the state folder.
    let (_, _, grid) = s.get(&format!("/runs/{real}"));
    assert!(grid.contains("say hello") && grid.contains("changed") && grid.contains("[a]") && grid.contains("[b]"), "{grid}");
    let (_, _, list) = s.get("/runs?playbook=small");
    assert!(list.contains(&real) && !list.contains("0badc0ffee00"), "{list}");
    for path in ["/runs", "/runs/0badc0ffee00", "/backups", "/plans", "/runs?operator=mallory"] {
        let (code, headers, body) = s.get(path);
        assert_eq!(code, 200, "{path}");
        assert!(headers.iter().any(|(k, _)| k == "content-security-policy"), "{path}");
        assert!(!body.contains("<script>") && !body.contains("<img src=x") && !body.contains("<svg onload") && !body.contains("<b>mallory"), "{path}: {body}");
    }
    let (_, _, hostile_page) = s.get("/runs/0badc0ffee00");
    let hostile_page = hostile_page.replace("&#60;", "&lt;").replace("&#62;", "&gt;");
    assert!(hostile_page.contains("is not an event") && hostile_page.contains("&lt;script&gt;alert("), "{hostile_page}");
    assert!(hostile_page.contains("&lt;svg onload=alert(2)&gt;"), "{hostile_page}");
    for path in ["/runs/..%2F..%2F..%2Fetc%2Fpasswd", "/runs/../../etc/passwd", "/static/../Cargo.toml", "/runs/0badc0ffee00%00"] {
        let (code, _, body) = s.get(path);
        assert!(code == 404 || code == 400, "{path}: {code}");
        assert!(!body.contains("root:"), "{path}");
    }

    // In the browser: the live board updates without a reload, and nothing is refused or thrown.
    let dir = shots();
    let mut b = Browser::open(&s.url("/"), 1280);
    assert!(b.eval("document.body.innerText").as_str().unwrap_or_default().contains(&format!("Fix first: {first}")));
    b.eval("window.__loaded = performance.timeOrigin; true");
    b.wait_for("Number(document.querySelector('#board').dataset.updated || 0) >= 1", Duration::from_secs(30));
    assert!(b.eval("window.__loaded === performance.timeOrigin") == serde_json::json!(true), "the page reloaded");
    b.screenshot(&dir.join("board.png"));
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    drop(b);
    // A phone: every page fits 375 px (no sideways scrolling) and loads clean.
    for (path, name) in [("/".to_string(), "board-phone.png"), ("/runs".to_string(), "runs-phone.png"), (format!("/runs/{real}"), "run-phone.png"), ("/runs/0badc0ffee00".to_string(), "hostile-run-phone.png"), ("/backups".to_string(), "backups-phone.png"), ("/plans".to_string(), "plans-phone.png")] {
        let mut b = Browser::open(&s.url(&path), 375);
        b.screenshot(&dir.join(name));
        assert!(!b.overflows(), "{path} is wider than a phone");
        assert!(b.errors.is_empty(), "{path}: {:?}", b.errors);
        // It prints: the print style hides the navigation.
        b.call("Emulation.setEmulatedMedia", serde_json::json!({"media": "print"}));
        assert_eq!(b.eval("getComputedStyle(document.querySelector('header')).display"), serde_json::json!("none"), "{path}");
    }

    // 20 watchers of the live board add no gate pass: passes follow the interval alone.
    let before = s.passes();
    let t = Instant::now();
    let watchers: Vec<_> = (0..20)
        .map(|_| {
            let port = s.port;
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
                write!(c, "GET /events/board HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut events = 0;
                let mut r = BufReader::new(c);
                let mut line = String::new();
                let end = Instant::now() + Duration::from_secs(5);
                while Instant::now() < end && r.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line.starts_with("event: update") {
                        events += 1;
                    }
                    line.clear();
                }
                events
            })
        })
        .collect();
    let events: Vec<u32> = watchers.into_iter().map(|w| w.join().unwrap()).collect();
    let passes = s.passes() - before;
    let allowed = t.elapsed().as_secs() / 2 + 2;
    assert!(passes <= allowed, "{passes} gate passes in {:?} with 20 watchers (interval 2 s)", t.elapsed());
    assert!(events.iter().all(|e| *e >= 1), "every watcher gets the board: {events:?}");
}

#[test]
fn a_run_is_one_html_page_that_opens_from_disk() {
    lab();
    let state = tempfile::tempdir().unwrap();
    let r = || Recover::new().env("RECOVER_STATE_DIR", state.path().to_str().unwrap());
    let id = small_run(r(), state.path());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.html");
    let out = r().args(["history", &id[..6], "--html", file.to_str().unwrap()]).run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let page = std::fs::read_to_string(&file).unwrap();
    assert!(page.contains(&format!("Run {id}")) && page.contains("<table class=\"grid\">") && page.contains("Recap"), "{page}");
    assert!(!page.contains("<script") && !page.contains("src=\"/static") && !page.contains("href=\"/static"), "self-contained: {page}");
    assert!(page.contains("the hash chain holds"), "{page}");
    let mut b = Browser::open(&format!("file://{}", file.display()), 900);
    assert!(b.eval("document.body.innerText").as_str().unwrap_or_default().contains("say hello"));
    b.screenshot(&shots().join("run-file.png"));
    assert!(b.errors.is_empty(), "{:?}", b.errors);
}

/// Signs in: the status, and the value of the response's Set-Cookie `recover_session`.
fn login_cookie(s: &Server, name: &str, secret: &str) -> (u16, Option<String>) {
    let (code, headers, _) = http(s.port, "POST /login", "Content-Type: application/x-www-form-urlencoded\r\n", &format!("name={name}&secret={secret}"));
    let cookie = headers.iter().find(|(k, _)| k == "set-cookie").map(|(_, v)| v.split(';').next().unwrap_or_default().to_string());
    (code, cookie)
}

fn post(s: &Server, path: &str, cookie: &str, body: &str) -> (u16, String) {
    let (code, _, body) = http(s.port, &format!("POST {path}"), &format!("Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"), body);
    (code, body)
}

#[test]
fn a_saved_plan_is_approved_in_the_browser_by_two_board_approvers_then_applied() {
    lab();
    let state = tempfile::tempdir().unwrap();
    let r = || Recover::new().env("RECOVER_STATE_DIR", state.path().to_str().unwrap()).env("RECOVER_PLAN_TWO_PERSON", "1");
    // A BLOCK step on the lab's host 188 (this machine, under the lab's root): removing a file.
    let work = lab_root().join("188").join(format!("serve-approve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let scratch = work.join("scratch.txt");
    std::fs::write(&scratch, "keep me until approved\n").unwrap();
    give_to_host(&work);
    let play = write(state.path(), "remove.yml", &format!("- hosts: '188'\n  gather_facts: false\n  tasks:\n    - name: remove the scratch file\n      file: path={} state=absent\n      destructive: {{tier: BLOCK, reason: the test's scratch file}}\n", scratch.display()));
    let plan = state.path().join("remove.plan");
    let made = r().args(["play", play.to_str().unwrap(), "-i", "inventory/lab.yml", "--dry-run", "--save-plan", plan.to_str().unwrap()]).run();
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);

    // Two board approvers, each with a secret shown once.
    let mut secrets = Vec::new();
    for name in ["alice", "bob"] {
        let out = r().args(["serve", "add-approver", name]).run();
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        secrets.push(out.stdout.lines().last().unwrap().trim().to_string());
    }
    assert_ne!(r().args(["serve", "add-approver", "Alice"]).run().code, 0, "a name registered twice");
    let kept = std::fs::read_to_string(state.path().join("board-approvers/alice.json")).unwrap();
    assert!(!kept.contains(&secrets[0]), "the secret itself is kept");

    let s = Server::start(&r(), &["--interval", "3600", "--max-attempts", "1"]);
    // A wrong secret, and a form without the session's CSRF token: refused.
    assert_eq!(login_cookie(&s, "alice", "0000").0, 403);
    let (code, cookie) = login_cookie(&s, "alice", &secrets[0]);
    assert_eq!(code, 303);
    let cookie = cookie.expect("a session cookie");
    let (_, _, page) = s.get("/plans");
    assert!(page.contains("Sign in"), "not signed in without the cookie");
    assert!(page.contains("Fingerprint") && page.contains(&format!("{}: file", scratch.display())) && page.contains("[BLOCK]") && page.contains("waiting: 0 of 2"), "{page}");
    let digest = plan_digest(&plan);
    let (code, body) = post(&s, "/plans/approve", &cookie, &format!("digest={digest}"));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    let (code, _) = post(&s, "/plans/approve", &cookie, &format!("digest={digest}&csrf=forged"));
    assert_eq!(code, 403);
    let (code, _) = post(&s, "/plans/approve", "recover_session=forged", &format!("digest={digest}&csrf=x"));
    assert_eq!(code, 403);
    assert!(std::fs::read_to_string(&plan).unwrap().matches("\"approver\"").count() == 0, "a refused form approved");

    // In the browser: alice signs in and approves; twice counts once; bob approves too.
    let dir = shots();
    let approve_in_browser = |name: &str, secret: &str, shot: &str| {
        let mut b = Browser::open(&s.url("/login"), 375);
        b.eval(&format!("document.querySelector('input[name=name]').value = {name:?}; document.querySelector('input[name=secret]').value = {secret:?}; document.querySelector('form.login').submit(); true"));
        b.wait_for("location.pathname === '/plans' && document.readyState === 'complete' && !!document.querySelector('form.approve')", Duration::from_secs(20));
        b.eval("document.querySelector('form.approve').submit(); true");
        b.wait_for("location.search.startsWith('?approved=') && document.readyState === 'complete'", Duration::from_secs(20));
        b.screenshot(&dir.join(shot));
        assert!(b.errors.is_empty(), "{:?}", b.errors);
    };
    approve_in_browser("alice", &secrets[0], "approved-alice.png");
    let one = r().args(["apply", plan.to_str().unwrap()]).run();
    assert_eq!(one.code, 4, "{}{}", one.stdout, one.stderr);
    assert!(one.stderr.contains("needs 2 approver(s)") && one.stderr.contains("has 1 (alice)"), "{}", one.stderr);
    assert!(scratch.exists(), "a refused apply removed the file");
    approve_in_browser("bob", &secrets[1], "approved-bob.png");
    let shown = r().args(["plan", "show", plan.to_str().unwrap()]).run();
    assert!(shown.stdout.lines().any(|l| l.contains("alice at") && l.contains("valid")) && shown.stdout.lines().any(|l| l.contains("bob at") && l.contains("valid")), "{}", shown.stdout);
    assert!(std::fs::read_to_string(&plan).unwrap().contains("\"identity\":\"board:bob\""), "a board approval's identity");
    // The same records `recover approve` writes: in the audit chain, then applied.
    let applied = r().args(["apply", plan.to_str().unwrap()]).run();
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(!scratch.exists(), "the approved plan ran");
    let verify = r().args(["history", "--verify"]).run();
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    let _ = std::fs::remove_dir_all(&work);
}

/// A saved plan's digest, as its file says.
fn plan_digest(plan: &Path) -> String {
    let text = std::fs::read_to_string(plan).unwrap();
    text.lines().find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["digest"].as_str().map(str::to_string))).or_else(|| {
        serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["digest"].as_str().map(str::to_string))
    }).expect("the plan's digest")
}

#[test]
fn a_run_started_from_the_terminal_appears_and_fills_its_grid_live() {
    lab();
    let state = tempfile::tempdir().unwrap();
    let r = || Recover::new().env("RECOVER_STATE_DIR", state.path().to_str().unwrap());
    let s = Server::start(&r(), &["--interval", "3600", "--max-attempts", "1"]);
    // A run that takes a while: its first step, a wait on the host, then its last step.
    let play = write(state.path(), "slow.yml", "- hosts: '188'\n  gather_facts: false\n  tasks:\n    - name: before the wait\n      command: echo before\n    - name: the wait\n      command: sleep 4\n    - name: after the wait\n      command: echo after\n");
    let mut cmd = r().args(["play", play.to_str().unwrap(), "-i", "inventory/lab.yml"]).command();
    let mut run = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Its run log appears; the runs page lists it while it runs.
    let t = Instant::now();
    let id = loop {
        let found = std::fs::read_dir(state.path().join("runs")).ok().and_then(|rd| rd.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "jsonl")));
        if let Some(p) = found {
            break p.file_stem().unwrap().to_string_lossy().rsplit('-').next().unwrap().to_string();
        }
        assert!(t.elapsed() < Duration::from_secs(30), "no run log");
        std::thread::sleep(Duration::from_millis(50));
    };
    let (_, _, list) = s.get("/runs");
    assert!(list.contains(&id), "{list}");
    let mut b = Browser::open(&s.url(&format!("/runs/{id}")), 1280);
    let first = b.eval("document.querySelector('#run').innerText").as_str().unwrap_or_default().to_string();
    assert!(!first.contains("after the wait"), "the run had ended before the page opened: {first}");
    b.wait_for("document.querySelector('#run').innerText.includes('after the wait') && document.querySelector('#run').innerText.includes('Recap')", Duration::from_secs(60));
    b.wait_for("Number(document.querySelector('#run').dataset.updated || 0) >= 1", Duration::from_secs(5));
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    b.screenshot(&shots().join("run-live.png"));
    assert!(run.wait().unwrap().success());
}

#[test]
fn with_a_certificate_the_board_is_served_over_tls_only() {
    lab();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("board.pem"), dir.path().join("board.key"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let state = tempfile::tempdir().unwrap();
    let r = Recover::new().env("RECOVER_STATE_DIR", state.path().to_str().unwrap());
    let s = Server::start(&r, &["--interval", "3600", "--max-attempts", "1", "--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let out = Command::new("curl").args(["-s", "-D", "-", "--cacert"]).arg(&cert).arg(format!("https://127.0.0.1:{}/", s.port)).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.to_lowercase().contains("content-security-policy:") && text.contains("Cold-start board"), "{text}");
    // Plain HTTP to the TLS port gets no page.
    let (code, _, body) = s.get("/");
    assert!(code != 200 && !body.contains("Cold-start board"), "{code} {body}");
}

#[test]
fn while_pg_wal_repairs_the_database_the_board_turns_that_phase_green_without_a_reload() {
    lab();
    // A PostgreSQL of the test's own on 188 with real WAL damage, and a baseline whose data
    // phase probes it (the shared lab's own cluster stays as the other tests expect it).
    let scratch = host_scratch("188", "serve-pgwal");
    let (pg, port, _stop) = damaged_pg(&scratch);
    let dir = tempfile::tempdir().unwrap();
    let baseline = write(
        dir.path(),
        "baseline.yml",
        &format!(
            "extends: {}\nphases:\n  - name: P0-NETWORK\n    probes:\n      - {{name: SSH 188, type: ssh, host: \"188\"}}\n  - name: P0-188-DATA\n    depends_on: [P0-NETWORK]\n    probes:\n      - name: the test's PostgreSQL accepts connections\n        type: command\n        host: \"188\"\n        command: \"/usr/lib/postgresql/15/bin/pg_isready -h 127.0.0.188 -p {port}\"\n        suggest: \"recover play pg-wal --host 188 --dry-run\"\n  - name: P1-K3S\n    depends_on: [P0-188-DATA]\n    probes:\n      - {{name: SSH 120, type: ssh, host: \"120\"}}\n",
            repo().join("inventory/baseline.yml").display()
        ),
    );
    let state = tempfile::tempdir().unwrap();
    let r = || Recover::new().env("RECOVER_STATE_DIR", state.path().to_str().unwrap());
    let s = Server::start(&r(), &["--baseline", baseline.to_str().unwrap(), "--interval", "1"]);
    s.wait_passes(1);
    let mut b = Browser::open(&s.url("/"), 1280);
    let status = "document.querySelector('[data-phase=\"P0-188-DATA\"]').dataset.status";
    assert_eq!(b.eval(status), serde_json::json!("BLOCKED"));
    assert!(b.eval("document.body.innerText").as_str().unwrap_or_default().contains("Fix first: P0-188-DATA"));
    b.eval("window.__origin = performance.timeOrigin; true");
    b.screenshot(&shots().join("pg-wal-before.png"));

    // The repair, from a terminal, as the SOP's operator runs it.
    let vars = ["-e".to_string(), format!("pg_root={}", pg.display()), "-e".into(), format!("pg_port={port}"), "-e".into(), format!("pg_backup_dir={}", scratch.join("backups").display())];
    let fix = r().args(["play", "pg-wal", "--host", "188", "--approve", "pg-wal@188"]).args(&vars).run();
    assert_eq!(fix.code, 0, "{}{}", fix.stdout, fix.stderr);

    b.wait_for(&format!("{status} === 'PASS'"), Duration::from_secs(60));
    assert_eq!(b.eval("window.__origin === performance.timeOrigin"), serde_json::json!(true), "the page reloaded");
    assert!(!b.eval("document.body.innerText").as_str().unwrap_or_default().contains("Fix first: P0-188-DATA"));
    b.screenshot(&shots().join("pg-wal-after.png"));
    assert!(b.errors.is_empty(), "{:?}", b.errors);
}
