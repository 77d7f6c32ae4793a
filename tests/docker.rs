//! Docker on the lab's own engine (scripts/lab-docker: a private dockerd, real containers,
//! volumes, restart policies, `docker exec` and a real Compose project): the `docker` and
//! `compose` service managers, container_facts, restart_policy, and docker-orphans on
//! containers that really exited 137 and 128. Every test makes and removes its own containers.

mod common;

use std::process::Command;

use common::*;

fn run_playbook(dir: &std::path::Path, yaml: &str, vars: &serde_json::Value, extra: &[&str]) -> Run {
    let pb = write(dir, "pb.yml", yaml);
    let v = write(dir, "vars.json", &vars.to_string());
    Recover::new().args(["play", pb.to_str().unwrap(), "-i", repo().join("inventory/lab.yml").to_str().unwrap(), "-e", &format!("@{}", v.display())]).args(extra).run()
}

#[test]
fn docker_and_compose_managers_act_on_real_containers_and_say_what_they_see() {
    lab();
    let scratch = host_scratch("188", "managers");
    let web = own_name("web");
    let looping = own_name("loop");
    let project = own_name("stack");
    let kroot = scratch.join("kafka");
    std::fs::create_dir_all(kroot.join("data-1")).unwrap();
    std::fs::create_dir_all(kroot.join("data-2")).unwrap();
    let guarded = scratch.join("guarded");
    std::fs::create_dir_all(&guarded).unwrap();
    let _gone = Containers(vec![web.clone(), looping.clone(), format!("{project}_kafka_1"), format!("{project}_snuba-consumer_1")]);
    docker(&["run", "-d", "--name", &web, "--network", "host", "--restart", "unless-stopped", "-v", &format!("{}:/data", guarded.display()), "recover-lab/busybox", "lab-service", "consumer", "web"]);
    docker(&["run", "-d", "--name", &looping, "--network", "host", "--restart", "no", "recover-lab/busybox", "sh", "-c", "echo 'cannot open /data: Bad message' >&2; exit 1"]);
    let port = free_port("127.0.0.188").to_string();
    lab_docker(&["sentry", scratch.join("stack").to_str().unwrap(), &project, "127.0.0.188", &port, kroot.to_str().unwrap()]);
    give_to_host(&scratch);
    let vars = serde_json::json!({
        "services": {
            "web": {"manager": "docker", "container": web},
            "broken": {"manager": "docker", "container": looping},
            "worker": {"manager": "compose", "project_dir": scratch.join("stack").display().to_string(), "project": project, "service": "snuba-consumer"},
        },
        "recover_backup_root": scratch.join("backups").display().to_string(),
        "web_name": web,
    });
    let facts = |v: &[&str]| format!("- container_facts:\n    names: [\"{{{{ web_name }}}}\"]\n- assert:\n    that:\n{}", v.iter().map(|c| format!("      - \"{c}\"\n")).collect::<String>());
    let yaml = format!(
        r#"- hosts: "188"
  gather_facts: false
  tasks:
{}"#,
        [
            "- service: {name: web, state: stopped}\n  register: stop1\n".to_string(),
            facts(&["ansible_facts.containers[web_name].status == 'exited'"]),
            "- service: {name: web, state: stopped}\n  register: stop2\n- assert:\n    that: [stop1 is changed, stop2 is not changed]\n".into(),
            "- service: {name: web, state: started}\n  register: start1\n".into(),
            facts(&["ansible_facts.containers[web_name].running", "start1 is changed", "ansible_facts.containers[web_name].restart_policy == 'unless-stopped'", "ansible_facts.containers[web_name].mounts[0].destination == '/data'"]),
            "- service: {name: web, state: restarted}\n  register: r\n- service: {name: web, state: reloaded}\n  register: hup\n- assert:\n    that: [r is changed, hup is changed]\n".into(),
            "- restart_policy: {service: web, policy: \"no\"}\n  register: p1\n- restart_policy: {service: web, policy: \"no\"}\n  register: p2\n".into(),
            facts(&["ansible_facts.containers[web_name].restart_policy == 'no'", "p1 is changed", "p2 is not changed"]),
            "- restart_policy: {service: web, state: restored}\n  register: p3\n- restart_policy: {service: web, state: restored}\n  register: p4\n".into(),
            facts(&["ansible_facts.containers[web_name].restart_policy == 'unless-stopped'", "p3 is changed", "p4 is not changed"]),
            "- service: {name: worker, state: stopped}\n  register: w1\n- service: {name: worker, state: started}\n  register: w2\n- service: {name: worker, state: started}\n  register: w3\n- assert:\n    that: [w1 is changed, w2 is changed, w3 is not changed]\n".into(),
            "- community.docker.docker_container_exec:\n    container: \"{{ web_name }}\"\n    argv: [sh, -c, 'cat; echo err >&2; exit 3']\n    stdin: hello\n  register: x\n- docker_container_exec: {container: \"{{ web_name }}\", command: \"sh -c 'echo $HOME in $PWD as $(id -u)'\", chdir: /tmp, user: \"65534\"}\n  register: y\n- assert:\n    that: [x is changed, x.rc == 3, x.stdout == 'hello', x.stderr == 'err', \"y.stdout_lines[0].endswith(' in /tmp as 65534')\"]\n".into(),
            "- service: {name: broken, state: started}\n".into(),
        ]
        .iter()
        .map(|t| t.lines().map(|l| format!("    {l}\n")).collect::<String>())
        .collect::<String>()
    );
    let r = run_playbook(scratch.as_path(), &yaml, &vars, &["--yes"]);
    // Everything up to the last task passed; the last fails, saying what the container did.
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("Assertion failed"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("service broken is not running after the change ({looping} exited (1)")) && r.stdout.contains("Bad message"), "{}", r.stdout);
    assert_eq!(inspect(&web, "{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}"), "running unless-stopped");
    assert_eq!(inspect(&format!("{project}_snuba-consumer_1"), "{{.State.Status}}"), "running");

    // A container's tier comes from the volumes it mounts: a BLOCK path makes stopping it BLOCK.
    let stop = "- hosts: \"188\"\n  gather_facts: false\n  tasks:\n    - service: {name: web, state: stopped}\n";
    let mut v = vars.clone();
    v["clickhouse_data_dir"] = serde_json::json!(guarded.display().to_string());
    let dry = run_playbook(scratch.as_path(), stop, &v, &["--dry-run"]);
    assert!(dry.stdout.contains("DESTRUCTIVE [BLOCK]") && dry.stdout.contains(&format!("mounts {}", guarded.display())), "{}", dry.stdout);
    let dry = run_playbook(scratch.as_path(), stop, &vars, &["--dry-run"]);
    assert!(dry.stdout.contains("DESTRUCTIVE [STANDARD_HITL]"), "{}", dry.stdout);
    assert_eq!(inspect(&web, "{{.State.Status}}"), "running");
}

#[test]
fn docker_orphans_saves_and_removes_only_the_containers_that_exited_137_or_128() {
    lab();
    let scratch = host_scratch("110", "orphans");
    let p = format!("orph{}-", std::process::id());
    let names: Vec<String> = ["killed", "exited128", "clean", "running"].iter().map(|n| format!("{p}{n}")).collect();
    let _gone = Containers(names.clone());
    let _vol = Containers(vec![format!("{p}killed-cache")]);
    lab_docker(&["orphans", &p]);
    assert_eq!(inspect(&names[0], "{{.State.ExitCode}}"), "137");
    assert_eq!(inspect(&names[1], "{{.State.ExitCode}}"), "128");
    let ids: Vec<String> = names.iter().map(|n| inspect(n, "{{.Id}}")).collect();
    let vars = ["-e".to_string(), format!("docker_orphan_match=^{p}"), "-e".into(), format!("docker_orphan_backup_dir={}/saved", scratch.display())];

    let dry = Recover::new().args(["play", "docker-orphans", "--dry-run"]).args(&vars).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains(&format!("2 orphan container(s): {p}exited128 (Exited (128)")) && dry.stdout.contains(&format!("{p}killed (Exited (137)")), "{}", dry.stdout);
    assert!(dry.stdout.contains("DESTRUCTIVE [STANDARD_HITL]") && dry.stdout.contains(&format!("its volumes and mounts are kept: {p}killed-cache")), "{}", dry.stdout);
    for (n, id) in names.iter().zip(&ids) {
        assert_eq!(&inspect(n, "{{.Id}}"), id, "dry-run touched {n}");
    }
    let refused = Recover::new().args(["play", "docker-orphans"]).args(&vars).run();
    assert_eq!(refused.code, 4, "{}", refused.stdout);
    assert_eq!(inspect(&names[0], "{{.Id}}"), ids[0]);

    let run = Recover::new().args(["play", "docker-orphans", "--yes"]).args(&vars).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(inspect(&names[0], "{{.Id}}"), "");
    assert_eq!(inspect(&names[1], "{{.Id}}"), "");
    assert_eq!(inspect(&names[2], "{{.Id}}"), ids[2], "the container that exited 0 was removed");
    assert_eq!(inspect(&names[3], "{{.State.Status}}"), "running");
    // Each removed one: its inspect and its writable layer, with a sha256 manifest that checks.
    let saved = scratch.join("saved");
    for (n, id) in names.iter().zip(&ids).take(2) {
        let base = saved.join(format!("{n}-{}", &id[..12]));
        let inspected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(base.with_extension("inspect.json")).unwrap()).unwrap();
        assert_eq!(inspected[0]["Id"], id.as_str());
        let check = Command::new("sha256sum").args(["-c", base.with_extension("sha256").file_name().unwrap().to_str().unwrap()]).current_dir(&saved).output().unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    }
    let layer = Command::new("tar").args(["-tf", saved.join(format!("{}-{}.tar", names[0], &ids[0][..12])).to_str().unwrap()]).output().unwrap();
    assert!(String::from_utf8_lossy(&layer.stdout).lines().any(|l| l.trim_start_matches("./") == "tmp/layer-file"), "the writable layer is not in the export");
    // The volume stays, with what the container wrote to it.
    let vol = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &format!("{p}killed-cache")]);
    assert_eq!(std::fs::read_to_string(format!("{vol}/kept")).unwrap(), "state\n");

    let again = Recover::new().args(["play", "docker-orphans", "--output", "json"]).args(&vars).run();
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.recap()["110"]["changed"], 0, "{}", again.stdout);
}

#[test]
fn the_docker_probe_sees_a_restart_count_rise_between_watch_attempts() {
    // A container that runs a second, then falls over, under `--restart always`: at any one
    // moment it may look running, but its restart count rises from one attempt to the next.
    lab();
    let name = own_name("flap");
    let _gone = Containers(vec![name.clone()]);
    docker(&["run", "-d", "--name", &name, "--network", "host", "--restart", "always", "recover-lab/busybox", "sh", "-c", "sleep 1; exit 1"]);
    let tmp = tempfile::tempdir().unwrap();
    let baseline = write(
        tmp.path(),
        "baseline.yml",
        &format!(
            "phases:\n  - name: P0-188-DATA\n    probes:\n      - {{name: no restart loop, type: docker, host: \"188\", containers: [{name}]}}\n      - {{name: keeps the watch going, type: command, host: \"188\", command: \"false\", required: false}}\n"
        ),
    );
    let r = Recover::new().args(["check", "--baseline", baseline.to_str().unwrap(), "--watch", "--interval", "3", "--max-attempts", "3"]).run();
    assert_ne!(r.code, 0, "{}", r.stdout);
    let last = r.stdout.rsplit("no restart loop").next().unwrap_or_default();
    assert!(r.stdout.matches("FAIL no restart loop").count() >= 1 && r.stdout.contains(&format!("{name}")), "{}", r.stdout);
    assert!(r.stdout.contains("restart loop") && (r.stdout.contains("since the last attempt") || r.stdout.contains("is in a restart loop")), "{last}\n{}", r.stdout);
}
