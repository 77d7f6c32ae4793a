//! The SOP's recovery playbooks, each on a real broken state in the lab.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Stops a PostgreSQL cluster on drop (postmaster.pid's first line is its PID).

/// Content and mode of every file under `dir`, by path relative to it.
fn rel_hash(dir: &Path) -> Vec<(String, u32, String)> {
    tree_hash(dir).into_iter().map(|(p, m, h)| (p.strip_prefix(&dir.display().to_string()).unwrap_or(&p).to_string(), m, h)).collect()
}

#[test]
fn pg_wal_repairs_real_checkpoint_damage_with_a_verified_backup_and_loses_nothing() {
    lab();
    let scratch = host_scratch("188", "pgwal");
    let (pg, port, _stop) = damaged_pg(&scratch);
    let vars = [
        "-e".to_string(),
        format!("pg_root={}", pg.display()),
        "-e".into(),
        format!("pg_port={port}"),
        "-e".into(),
        format!("pg_backup_dir={}", scratch.join("backups").display()),
    ];
    let damaged = rel_hash(&pg.join("data"));

    // (a) dry-run: the diagnosis and the whole plan, and nothing changes.
    let dry = Recover::new().args(["play", "pg-wal", "--dry-run"]).args(&vars).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("WAL checkpoint damage"), "{}", dry.stdout);
    assert!(dry.stdout.contains("DESTRUCTIVE [BLOCK]"), "{}", dry.stdout);
    assert!(dry.stdout.contains("pg_resetwal -f"), "{}", dry.stdout);
    assert_eq!(damaged, rel_hash(&pg.join("data")), "dry-run changed the cluster");
    assert!(!scratch.join("backups").exists());

    // (b) no terminal and no approval: the BLOCK step is refused, the cluster untouched.
    let refused = Recover::new().args(["play", "pg-wal"]).args(&vars).run();
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stdout.contains("--approve pg-wal@188"), "{}", refused.stdout);
    assert_eq!(damaged, rel_hash(&pg.join("data")));
    // A refused (or declined) reset leaves nothing that changes the next diagnosis.
    assert!(!scratch.join("backups/.pg-wal-repair-unfinished").exists(), "the unfinished marker was written before pg_resetwal ran");
    let again = Recover::new().args(["play", "pg-wal", "--dry-run"]).args(&vars).run();
    assert!(again.stdout.contains("WAL checkpoint damage") && !again.stdout.contains("did not finish"), "{}", again.stdout);

    // (b) approved: verified backup, repair, data readable.
    let repair = Recover::new().args(["play", "pg-wal", "--approve", "pg-wal@188", "--output", "json"]).args(&vars);
    let run = repair.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let log = repair.run_log();
    assert!(log.iter().any(|e| e["event"] == "approval" && e["tier"] == "BLOCK" && e["how"] == "--approve pg-wal@188"));
    let backup = log.iter().find(|e| e["event"] == "backup").expect("a verified backup")["backup"].clone();
    let archive = backup["archive"].as_str().unwrap();
    assert!(archive.contains("/backups/15-main-before-pg-resetwal-") && archive.ends_with(".tgz"), "{archive}");
    let rows = Command::new("sudo")
        .args(["-n", "-u", "postgres", "/usr/lib/postgresql/15/bin/psql", "-h", "127.0.0.188", "-p", &port, "-d", "k3s_datastore", "-tAc", "SELECT count(*) FROM kine"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), "1000", "{}", String::from_utf8_lossy(&rows.stderr));

    // (c) a second run changes nothing.
    let again = Recover::new().args(["play", "pg-wal", "--output", "json"]).args(&vars).run();
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.recap()["188"]["changed"], 0, "{}", again.stdout);
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);

    // (d) nothing lost: the backup holds the damaged cluster exactly as it was.
    let out = tempfile::tempdir().unwrap();
    assert!(Command::new("tar").args(["-xzpf", archive, "-C", out.path().to_str().unwrap()]).status().unwrap().success());
    let restored = out.path().join(pg.join("data").strip_prefix("/").unwrap());
    assert_eq!(damaged, rel_hash(&restored), "the backup does not hold the original cluster");
}

/// An nginx of the test's own on 188, serving `sites/*.conf`, with the SOP 13.6 drift in place.
fn own_nginx(scratch: &Path, port: u32) -> (PathBuf, KillOnDrop) {
    let prefix = scratch.join("nginx");
    for d in ["sites", "logs", "tmp"] {
        std::fs::create_dir_all(prefix.join(d)).unwrap();
    }
    std::fs::write(
        prefix.join("nginx.conf"),
        "worker_processes 2;\npid nginx.pid;\nerror_log logs/error.log;\nevents { worker_connections 64; }\nhttp {\n    access_log off;\n    client_body_temp_path tmp/body;\n    proxy_temp_path tmp/proxy;\n    fastcgi_temp_path tmp/fastcgi;\n    uwsgi_temp_path tmp/uwsgi;\n    scgi_temp_path tmp/scgi;\n    include sites/*.conf;\n}\n",
    )
    .unwrap();
    let site = prefix.join("sites/188-all-sites.conf");
    assert!(Command::new(repo().join("scripts/nginx-drifted")).args([site.to_str().unwrap(), &format!("127.0.0.188:{port}")]).status().unwrap().success());
    assert!(Command::new("chown").args(["-R", "ollama:", scratch.to_str().unwrap()]).status().unwrap().success());
    let p = prefix.to_str().unwrap();
    let st = Command::new("sudo")
        .args(["-n", "-u", "ollama", "/usr/sbin/nginx", "-p", p, "-e", &format!("{p}/logs/error.log"), "-c", &format!("{p}/nginx.conf")])
        .status()
        .unwrap();
    assert!(st.success());
    (prefix.clone(), KillOnDrop(prefix.join("nginx.pid")))
}

/// nginx's master PID and its workers' PIDs.
fn nginx_generation(prefix: &Path) -> (String, String) {
    let master = std::fs::read_to_string(prefix.join("nginx.pid")).unwrap().trim().to_string();
    let out = Command::new("ps").args(["-o", "pid=", "--ppid", &master]).output().unwrap();
    let mut workers: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect();
    workers.sort();
    (master, workers.join(","))
}

#[test]
fn nginx_vip_sync_replaces_the_drifted_gateway_only_when_nginx_accepts_it_and_the_reload_takes() {
    lab();
    let scratch = host_scratch("188", "vip");
    let port = free_port("127.0.0.188");
    let (prefix, _nginx) = own_nginx(&scratch, port);
    let site = prefix.join("sites/188-all-sites.conf");
    let vars = |listen: &str| vec!["-e".to_string(), format!("nginx_prefix={}", prefix.display()), "-e".into(), format!("nginx_gateway_listen={listen}"), "-e".into(), format!("recover_backup_root={}/backups", scratch.display())];
    let listen = format!("127.0.0.188:{port}");
    let drifted = std::fs::read(&site).unwrap();

    // (a) dry-run: the exact diff, nothing touched.
    let before = tree_hash(&scratch);
    let dry = Recover::new().args(["play", "nginx-vip-sync", "--dry-run"]).args(vars(&listen)).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("-        proxy_pass http://127.0.0.120:31234/api/;"), "{}", dry.stdout);
    assert!(dry.stdout.contains("+        proxy_pass http://127.0.0.125:32334/api/;"), "{}", dry.stdout);
    assert!(dry.stdout.contains("DESTRUCTIVE [STANDARD_HITL]"), "{}", dry.stdout);
    assert_eq!(before, tree_hash(&scratch));

    // A config nginx rejects: the live file stays as it was, nginx is not reloaded, nginx's message is shown.
    let generation = nginx_generation(&prefix);
    let bad = Recover::new().args(["play", "nginx-vip-sync", "--yes"]).args(vars("127.0.0.188:99999")).run();
    assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stdout.contains("invalid port") || bad.stdout.contains("99999"), "nginx's message is missing: {}", bad.stdout);
    assert!(bad.stdout.contains("the previous file was put back"), "{}", bad.stdout);
    assert_eq!(std::fs::read(&site).unwrap(), drifted, "the live file changed although nginx rejected the new one");
    assert_eq!(generation, nginx_generation(&prefix), "nginx was reloaded");

    // (b) no terminal, no --yes: refused. With --yes: replaced, reloaded, verified.
    let refused = Recover::new().args(["play", "nginx-vip-sync"]).args(vars(&listen)).run();
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
    assert_eq!(std::fs::read(&site).unwrap(), drifted);
    let sync = Recover::new().args(["play", "nginx-vip-sync", "--yes", "--output", "json"]).args(vars(&listen));
    let run = sync.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let live = std::fs::read_to_string(&site).unwrap();
    assert!(live.contains("proxy_pass http://127.0.0.125:32334/api/v1/ws;") && live.contains("proxy_set_header Upgrade $http_upgrade;"), "{live}");
    assert!(!live.contains("127.0.0.120"), "{live}");
    let (m0, w0) = generation;
    let (m1, w1) = nginx_generation(&prefix);
    assert_eq!(m0, m1, "the master changed: nginx was restarted, not reloaded");
    assert_ne!(w0, w1, "no new worker generation: the reload did not take");
    // (d) the drifted file is preserved in a verified backup.
    let backup = sync.run_log().into_iter().find(|e| e["event"] == "backup").expect("a backup of the live file")["backup"].clone();
    let out = tempfile::tempdir().unwrap();
    assert!(Command::new("tar").args(["-xzf", backup["archive"].as_str().unwrap(), "-C", out.path().to_str().unwrap()]).status().unwrap().success());
    assert_eq!(std::fs::read(out.path().join(site.strip_prefix("/").unwrap())).unwrap(), drifted);

    // (c) in sync: nothing to do.
    let again = Recover::new().args(["play", "nginx-vip-sync", "--output", "json"]).args(vars(&listen)).run();
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.recap()["188"]["changed"], 0, "{}", again.stdout);
}

/// SQL in the test's momo-db container (its psql, over the container's own socket).
fn psql(container: &str, sql: &str) -> String {
    let out = docker(&["exec", container, "psql", "-U", "postgres", "-d", "momo", "-tAc", sql]);
    assert!(!out.is_empty(), "no answer from psql in {container} to {sql}");
    out
}

#[test]
fn momo_reindex_syncs_the_missing_range_keeps_everything_else_and_saves_what_it_found() {
    // momo-db is a real PostgreSQL 15 in a real container; the playbook reaches it only through
    // `docker exec -i momo-db ... psql` (the SOP's momo_psql), as on the real host.
    lab();
    let scratch = host_scratch("188", "momo");
    let port = free_port("127.0.0.188").to_string();
    let name = own_name("momo-db");
    let _gone = Containers(vec![name.clone()]);
    lab_docker(&["momo", &name, "127.0.0.188", &port]);
    let psql = |sql: &str| psql(&name, sql);
    let cleared = scratch.join("cache-cleared");
    let vars = [
        "-e".to_string(),
        format!("momo_container={name}"),
        "-e".into(),
        format!("momo_port={port}"),
        "-e".into(),
        format!("momo_backup_dir={}/backups", scratch.display()),
        "-e".into(),
        format!("momo_cache_clear_command='touch {}'", cleared.display()),
    ];
    let range = |table: &str, col: &str| psql(&format!("SELECT count(*) || ' ' || coalesce(min({col}::date)::text, '-') || ' ' || coalesce(max({col}::date)::text, '-') FROM {table} WHERE {col}::date BETWEEN '2026-05-01' AND '2026-05-28'"));
    let april = || psql("SELECT md5(string_agg(\"日期\" || sku || amount, ',' ORDER BY \"日期\", sku)) FROM realtime_sales_monthly WHERE \"日期\" < '2026-05-01'");
    let snapshot = || psql("SELECT md5(string_agg(id || snapshot_date::text || sku || amount, ',' ORDER BY id)) FROM daily_sales_snapshot");
    assert_eq!(range("daily_sales_snapshot", "snapshot_date"), "17353 2026-05-01 2026-05-28");
    assert_eq!(range("realtime_sales_monthly", "\"日期\""), "0 - -");
    let (april0, snapshot0) = (april(), snapshot());

    // (a) the diagnosis and the plan; nothing changes.
    let dry = Recover::new().args(["play", "momo-reindex", "--dry-run"]).args(&vars).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("daily_sales_snapshot has 17353, 2026-05-01, 2026-05-28 but realtime_sales_monthly has 0"), "{}", dry.stdout);
    assert!(dry.stdout.contains("DESTRUCTIVE [CRITICAL_HITL]"), "{}", dry.stdout);
    assert_eq!(range("realtime_sales_monthly", "\"日期\""), "0 - -");
    assert!(!scratch.join("backups").exists());

    // (b) refused with no terminal and no --yes; repaired with it.
    let refused = Recover::new().args(["play", "momo-reindex"]).args(&vars).run();
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
    assert_eq!(range("realtime_sales_monthly", "\"日期\""), "0 - -");
    let run_cmd = Recover::new().args(["play", "momo-reindex", "--yes"]).args(&vars);
    let run = run_cmd.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(range("realtime_sales_monthly", "\"日期\""), "17353 2026-05-01 2026-05-28");
    // Every statement went into the container through docker exec.
    let log = serde_json::to_string(&run_cmd.run_log()).unwrap();
    assert!(log.contains(&format!("docker exec -i {name} bash -lc")), "{log}");
    assert!(cleared.exists(), "the cache was not cleared");
    let saved: Vec<PathBuf> = std::fs::read_dir(scratch.join("backups")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(saved.len(), 1);
    assert!(std::fs::read_to_string(saved[0].join("counts-before.txt")).unwrap().contains("realtime_sales_monthly (count, min, max): 0"));
    assert!(std::fs::read_to_string(saved[0].join("realtime_sales_monthly-before.csv")).unwrap().starts_with("日期,sku,amount"));

    // (c) a second run changes nothing.
    let again = Recover::new().args(["play", "momo-reindex", "--output", "json"]).args(&vars).run();
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.recap()["188"]["changed"], 0, "{}", again.stdout);

    // (d) nothing else was touched: April's rows and the snapshot table are as they were.
    assert_eq!(april(), april0);
    assert_eq!(snapshot(), snapshot0);
}

#[test]
fn kafka_checkpoint_moves_only_the_checkpoint_files_and_brings_kafka_back() {
    // Sentry's Kafka is a service of a real Compose project (docker-compose, or the v2 plugin)
    // on the lab's dockerd. Kafka itself cannot be installed here (not in Debian, PyPI, npm or
    // crates.io): the broker container runs scripts/lab-service, which refuses to start on a
    // malformed checkpoint as Kafka does, so the container is in a real restart loop.
    lab();
    let scratch = host_scratch("110", "kafka");
    let root = scratch.join("kafka");
    assert!(Command::new(repo().join("scripts/kafka-broken")).args([root.to_str().unwrap(), "wooo"]).status().unwrap().success());
    let port = free_port("127.0.0.110").to_string();
    let project = own_name("sentry");
    let (broker, consumer) = (format!("{project}_kafka_1"), format!("{project}_snuba-consumer_1"));
    let _gone = Containers(vec![broker.clone(), consumer.clone()]);
    let dir = scratch.join("sentry");
    lab_docker(&["sentry", dir.to_str().unwrap(), &project, "127.0.0.110", &port, root.to_str().unwrap()]);
    give_to_host(&scratch);
    let vars = [
        "-e".to_string(),
        format!("kafka_root={}", root.display()),
        "-e".into(),
        format!("kafka_port={port}"),
        "-e".into(),
        format!("kafka_backup_dir={}/backups", scratch.display()),
        "-e".into(),
        format!("sentry_project_dir={}", dir.display()),
        "-e".into(),
        format!("sentry_project={project}"),
    ];
    let checkpoint = |p: &str| p.ends_with("-checkpoint");
    // Topic folders and segments: everything but the checkpoints.
    let topics = || tree_hash(&root).into_iter().filter(|(p, _, _)| !checkpoint(p)).collect::<Vec<_>>();
    let originals: Vec<(PathBuf, Vec<u8>)> = tree_hash(&root).into_iter().filter(|(p, _, _)| checkpoint(p)).map(|(p, _, _)| (PathBuf::from(&p), std::fs::read(&p).unwrap())).collect();
    assert_eq!(originals.len(), 6);
    let topics0 = topics();

    // The broken state is real: the broker container is in a restart loop, saying why.
    let mut looping = false;
    for _ in 0..50 {
        if inspect(&broker, "{{.State.Restarting}}") == "true" || inspect(&broker, "{{.RestartCount}}").parse::<u32>().unwrap_or(0) > 0 {
            looping = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(looping, "the broker is not in a restart loop: {}", inspect(&broker, "{{.State.Status}}"));
    assert!(docker(&["logs", &broker]).is_empty() || Command::new("/usr/bin/docker").env("DOCKER_HOST", format!("unix://{}/docker/docker.sock", lab_root().display())).args(["logs", &broker]).output().map(|o| String::from_utf8_lossy(&o.stdout).contains("Malformed line in checkpoint file")).unwrap_or(false));

    let before = tree_hash(&root);
    let dry = Recover::new().args(["play", "kafka-checkpoint", "--dry-run"]).args(&vars).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("malformed: ") && dry.stdout.contains("data-2/recovery-point-offset-checkpoint"), "{}", dry.stdout);
    assert!(dry.stdout.contains(&format!("compose service kafka ({})", dir.display())), "{}", dry.stdout);
    assert_eq!(before, tree_hash(&root), "dry-run changed something");
    assert_eq!(inspect(&consumer, "{{.State.Status}}"), "running", "dry-run stopped the consumer");

    let refused = Recover::new().args(["play", "kafka-checkpoint"]).args(&vars).run();
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);

    let run = Recover::new().args(["play", "kafka-checkpoint", "--yes"]).args(&vars).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // The SOP's order: the consumer stopped before Kafka, started after it.
    let order: Vec<&str> = run.stdout.lines().filter(|l| l.contains("changed") && (l.contains("dependents") || l.contains("Kafka"))).collect();
    assert!(order.len() >= 4 && order[0].contains("Stop the dependents") && order[1].contains("Stop Kafka") && order.last().unwrap().contains("Start the dependents"), "{order:#?}");
    // Preserved byte for byte, with a manifest of sha256s.
    let preserved = std::fs::read_dir(scratch.join("backups")).unwrap().flatten().next().unwrap().path();
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(preserved.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["moved"].as_array().unwrap().len(), 6);
    for (path, bytes) in &originals {
        let kept = preserved.join(path.strip_prefix("/").unwrap());
        assert_eq!(&std::fs::read(&kept).unwrap(), bytes, "{}", kept.display());
        use sha2::Digest;
        let sha = format!("{:x}", sha2::Sha256::digest(bytes));
        assert!(manifest["moved"].as_array().unwrap().iter().any(|m| m["sha256"] == sha && m["original"] == path.display().to_string()));
    }
    // Topic folders and segments untouched; the broker runs (not restarting) and so does its consumer.
    assert_eq!(topics0, topics(), "a topic folder or segment changed");
    for c in [&broker, &consumer] {
        assert_eq!(inspect(c, "{{.State.Status}} {{.State.Restarting}}"), "running false", "{c}");
    }
    let again = Recover::new().args(["play", "kafka-checkpoint", "--output", "json"]).args(&vars).run();
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.recap()["110"]["changed"], 0, "{}", again.stdout);
}

#[test]
fn clickhouse_clone_on_a_really_damaged_volume_keeps_the_original_and_clones_every_readable_file() {
    // ClickHouse's container is real, on a volume that is a loop-mounted ext4 image with two
    // part files damaged for real (EBADMSG and EUCLEAN, for root as for anyone); ClickHouse
    // itself cannot be installed here, so the container runs scripts/lab-service, which like
    // ClickHouse refuses to start on a broken part: a real restart loop under unless-stopped.
    lab();
    let name = own_name("ch");
    let query = format!("{name}-query");
    let _gone = Containers(vec![name.clone(), query.clone()]);
    let port = free_port("127.0.0.188").to_string();
    lab_docker(&["clickhouse", &name, "127.0.0.188", &port, "ollama"]);
    docker(&["run", "-d", "--name", &query, "--network", "host", "--restart", "unless-stopped", "recover-lab/busybox", "lab-service", "consumer", &query]);
    let volume = lab_root().join(format!("docker/data/volumes/{name}"));
    let data = volume.join("_data");
    let vars = [
        "-e".to_string(),
        format!("clickhouse_container={name}"),
        "-e".into(),
        format!("clickhouse_query_container={query}"),
        "-e".into(),
        format!("clickhouse_port={port}"),
    ];
    let (damaged, part_rows) = clickhouse_damage(&name);
    let damaged: Vec<&str> = damaged.iter().map(String::as_str).collect();
    let original = damaged_tree(&data);
    for (d, err) in damaged.iter().zip(["Bad message", "Structure needs cleaning"]) {
        let e = original.iter().find(|(p, _)| p == d).map(|(_, e)| e.clone()).unwrap_or_default();
        assert!(e.contains(err), "{d}: {e}");
    }
    let policy = || inspect(&name, "{{.HostConfig.RestartPolicy.Name}}");
    assert_eq!(policy(), "unless-stopped");

    // The gates read the loop for what it is: storage corruption, do not restart.
    let tmp = tempfile::tempdir().unwrap();
    let baseline = tmp.path().join("baseline.yml");
    std::fs::write(
        &baseline,
        format!(
            "phases:\n  - name: P0-188-DATA\n    probes:\n      - {{name: no ClickHouse restart loop, type: docker, host: \"188\", containers: [{name}], corruption_playbook: clickhouse-clone, suggest: restart it}}\n      - {{name: ClickHouse log, type: storage_log, host: \"188\", container: {name}, playbook: clickhouse-clone}}\n"
        ),
    )
    .unwrap();
    let mut check = None;
    for _ in 0..30 {
        let c = Recover::new().args(["check", "--baseline", baseline.to_str().unwrap()]).run();
        if c.stdout.matches("storage corruption below the container: do not restart; run recover play clickhouse-clone --host 188 --dry-run; plan an offline fsck or a restore").count() >= 2 {
            check = Some(c);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let check = check.expect("the gates never named the storage corruption");
    assert_eq!(check.code, 2, "{}", check.stdout);
    assert!(check.stdout.contains("BLOCKED") && check.stdout.contains("restart loop") && !check.stdout.contains("suggest: restart it"), "{}", check.stdout);

    // Dry-run: volume, container and policy unchanged.
    let dry = Recover::new().args(["play", "clickhouse-clone", "--dry-run"]).args(&vars).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("2 unreadable path(s)") && dry.stdout.contains("DESTRUCTIVE [BLOCK]"), "{}", dry.stdout);
    assert!(dry.stdout.contains("Bad message") && dry.stdout.contains("unless-stopped -> no"), "{}", dry.stdout);
    assert_eq!(original, damaged_tree(&data));
    assert_eq!(policy(), "unless-stopped");
    assert_ne!(inspect(&name, "{{.State.Status}}"), "exited");

    // BLOCK: --yes alone is refused, nothing changed.
    let yes_only = Recover::new().args(["play", "clickhouse-clone", "--yes"]).args(&vars).run();
    assert_eq!(yes_only.code, 4, "BLOCK needs --approve: {}", yes_only.stdout);
    assert_eq!(original, damaged_tree(&data));

    let run = Recover::new().args(["play", "clickhouse-clone", "--yes", "--approve", "clickhouse-clone@188"]).args(&vars).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let corrupt: PathBuf = std::fs::read_dir(&volume).unwrap().flatten().map(|e| e.path()).find(|p| p.is_dir() && p.to_string_lossy().contains("_data.corrupt-")).expect("the preserved original");
    // The original, whole, under its new name: the damaged files still there, still refused.
    assert_eq!(original, damaged_tree(&corrupt), "the preserved original is not complete");
    // The clone: every readable file byte-identical with mode, owner and mtime; links kept as links; the damaged left out.
    let clone: Vec<_> = damaged_tree(&data).into_iter().filter(|e| !e.0.starts_with("flags")).collect();
    let expected: Vec<_> = original.iter().filter(|e| !damaged.contains(&e.0.as_str()) && !e.0.starts_with("flags")).cloned().collect();
    assert_eq!(clone, expected);
    assert!(data.join("flags/force_restore_data").exists());
    // The exclude list names each file with the filesystem's error.
    let exclude = std::fs::read_to_string(format!("{}.exclude", corrupt.display())).unwrap();
    for (d, err) in damaged.iter().zip(["Bad message", "Structure needs cleaning"]) {
        assert!(exclude.lines().any(|l| l.contains(d) && l.ends_with(&format!("\t{err}"))), "{d} ({err}) missing from the exclude list:\n{exclude}");
    }
    assert!(std::fs::read_to_string(format!("{}.logs.txt", corrupt.display())).unwrap().contains("broken and needs manual correction"));
    // ClickHouse runs again (no loop), with its restart policy put back; its consumer too.
    for c in [&name, &query] {
        assert_eq!(inspect(c, "{{.State.Status}} {{.State.Restarting}}"), "running false", "{c}");
    }
    assert_eq!(policy(), "unless-stopped");
    let after = Recover::new().args(["check", "--baseline", baseline.to_str().unwrap()]).run();
    assert!(!after.stdout.contains("storage corruption"), "{}", after.stdout);

    // With chdb the data is ClickHouse's own: the clean clone opens in ClickHouse's engine and
    // returns every row of the parts that were not damaged (counted before the damage).
    match chdb() {
        None => eprintln!("chdb is not installed: the clone is checked file by file only"),
        Some(py) => {
            assert_eq!(part_rows.len(), 4, "{part_rows:?}");
            let readable: u64 = part_rows.iter().filter(|(p, _)| !damaged.iter().any(|d| d.contains(&format!("/{p}/")))).map(|(_, n)| n).sum();
            assert_eq!(readable, 2000);
            let copy = tempfile::tempdir().unwrap();
            assert!(Command::new("cp").args(["-a", &format!("{}/.", data.display()), copy.path().to_str().unwrap()]).status().unwrap().success());
            let out = Command::new(py)
                .args(["-c", "import sys; from chdb import session; s = session.Session(sys.argv[1]); print(s.query('SELECT count() FROM lab.events', 'CSV'), end=''); print(s.query('SELECT count() FROM system.detached_parts', 'CSV'), end='')", copy.path().to_str().unwrap()])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let got = String::from_utf8_lossy(&out.stdout).to_string();
            assert_eq!(got.split_whitespace().collect::<Vec<_>>(), [readable.to_string(), "2".into()], "rows in the clone, then detached (broken) parts");
        }
    }

    let again = Recover::new().args(["play", "clickhouse-clone", "--output", "json"]).args(&vars).run();
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.recap()["188"]["changed"], 0, "{}", again.stdout);
}

#[test]
fn runner_guardrails_set_the_limits_that_a_real_systemd_reports() {
    // A real systemd, booted by systemd-nspawn (shared/SYSTEMD-IN-TESTS.md); its sshd on 127.0.0.130.
    lab();
    let name = format!("rg-{}", std::process::id());
    let _c = Nspawn::up(&name, "127.0.0.130");
    let tmp = tempfile::tempdir().unwrap();
    let host_key = std::fs::read_to_string(lab_root().join("ssh/host_ed25519.pub")).unwrap();
    let kh = write(tmp.path(), "known_hosts", &format!("[127.0.0.130]:2222 {}\n", host_key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")));
    let inv = write(
        tmp.path(),
        "inv.yml",
        &format!(
            "all:\n  children:\n    registry:\n      hosts:\n        \"110\":\n          ansible_host: 127.0.0.130\n          ansible_port: 2222\n          ansible_user: wooo\n          ansible_ssh_private_key_file: {}\n          ansible_ssh_common_args: \"-o UserKnownHostsFile={}\"\n          recover_lock_dir: /tmp/recover-lock\n",
            lab_root().join("ssh/id_ed25519").display(),
            kh.display()
        ),
    );
    let show = |unit: &str| {
        let out = Command::new(repo().join("scripts/nspawn-host"))
            .args(["exec", &name, "systemctl", "show", unit, "-p", "CPUQuotaPerSecUSec", "-p", "MemoryMax", "-p", "WatchdogUSec"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let units = ["actions.runner.awoooi.lab-runner-1.service", "gitea-act-runner-host.service"];
    let before: Vec<String> = units.iter().map(|u| show(u)).collect();
    assert!(before[0].contains("MemoryMax=infinity"), "{}", before[0]);

    let dry = Recover::new().args(["play", "runner-guardrails", "-i", inv.to_str().unwrap(), "--dry-run"]).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("runner units: actions.runner.awoooi.lab-runner-1.service, gitea-act-runner-host.service"), "{}", dry.stdout);
    assert!(dry.stdout.contains("DESTRUCTIVE [STANDARD_HITL]"), "{}", dry.stdout);
    assert_eq!(before, units.iter().map(|u| show(u)).collect::<Vec<_>>(), "dry-run changed a unit");

    let refused = Recover::new().args(["play", "runner-guardrails", "-i", inv.to_str().unwrap()]).run();
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);

    let run = Recover::new().args(["play", "runner-guardrails", "-i", inv.to_str().unwrap(), "--yes"]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for u in units {
        let props = show(u);
        assert!(props.contains("CPUQuotaPerSecUSec=2s\n") && props.contains("MemoryMax=2147483648\n") && props.contains("WatchdogUSec=0\n"), "{u}: {props}");
    }
    let again = Recover::new().args(["play", "runner-guardrails", "-i", inv.to_str().unwrap(), "--output", "json"]).run();
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.recap()["110"]["changed"], 0, "{}", again.stdout);
}

#[test]
fn drift_finds_the_gateway_drift_with_a_diff_and_none_after_nginx_vip_sync() {
    lab();
    let scratch = host_scratch("188", "drift");
    let port = free_port("127.0.0.188");
    let (prefix, _nginx) = own_nginx(&scratch, port);
    let tmp = tempfile::tempdir().unwrap();
    // Two alert rule files that must be equal (SOP 13.6), and the gateway against its template.
    let rules = scratch.join("monitoring");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("alerts.yml"), "groups: [{name: cold-start, rules: []}]\n").unwrap();
    std::fs::write(rules.join("alerts-unified.canonical.yml"), "groups: [{name: cold-start, rules: []}]\n").unwrap();
    let b = write(
        tmp.path(),
        "baseline.yml",
        &format!(
            "drift:\n  - name: 188 gateway config\n    host: \"188\"\n    template: roles/nginx/templates/188-all-sites.conf.j2\n    defaults: roles/nginx/defaults/main.yml\n    live: \"{{{{ nginx_site_path }}}}\"\n  - name: alert rules canonical\n    host: \"188\"\n    equal: [{0}/alerts.yml, {0}/alerts-unified.canonical.yml]\n",
            rules.display()
        ),
    );
    let vars = ["-e".to_string(), format!("nginx_prefix={}", prefix.display()), "-e".into(), format!("nginx_gateway_listen=127.0.0.188:{port}")];
    let before = tree_hash(&scratch);
    let found = Recover::new().args(["drift", "--baseline", b.to_str().unwrap()]).args(&vars).run();
    assert_eq!(found.code, 1, "{}{}", found.stdout, found.stderr);
    assert!(found.stdout.contains("DRIFT 188 gateway config"), "{}", found.stdout);
    assert!(found.stdout.contains("-        proxy_pass http://127.0.0.120:31234/api/;") && found.stdout.contains("+        proxy_pass http://127.0.0.125:32334/api/;"), "{}", found.stdout);
    assert!(found.stdout.contains("ok    alert rules canonical: no drift"), "{}", found.stdout);
    assert_eq!(before, tree_hash(&scratch), "drift changed something");

    let sync = Recover::new().args(["play", "nginx-vip-sync", "--yes", "-e", &format!("recover_backup_root={}/backups", scratch.display())]).args(&vars).run();
    assert_eq!(sync.code, 0, "{}{}", sync.stdout, sync.stderr);
    let none = Recover::new().args(["drift", "--baseline", b.to_str().unwrap(), "--output", "json"]).args(&vars).run();
    assert_eq!(none.code, 0, "{}{}", none.stdout, none.stderr);
    let j: serde_json::Value = serde_json::from_str(&none.stdout).unwrap();
    assert_eq!(j[0]["drift"], false);

    // The canonical rules drift apart: found, and named.
    std::fs::write(rules.join("alerts.yml"), "groups: [{name: old, rules: []}]\n").unwrap();
    let rules_drift = Recover::new().args(["drift", "--baseline", b.to_str().unwrap()]).args(&vars).run();
    assert_eq!(rules_drift.code, 1);
    assert!(rules_drift.stdout.contains("DRIFT alert rules canonical"), "{}", rules_drift.stdout);
    let bad = Recover::new().args(["drift", "--baseline", "/nonexistent.yml"]).run();
    assert_eq!(bad.code, 2);
}
