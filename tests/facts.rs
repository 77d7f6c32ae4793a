//! Facts against ansible-core's `setup` (issue 16): the same lab host (188, real sshd, the
//! same login), gathered by `ansible -m setup` (ansible-core from PyPI) and by recover's
//! `gather_facts`; every fact the issue names must be there with the same value. Timing facts
//! (the clock, uptime, load, free memory and free space) are compared by their keys only, and
//! `ansible_env` by the variables the login sets (not those of how each tool runs a command).

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;
use serde_json::Value as Json;

/// The facts the issue names, without the `ansible_` prefix (as in `ansible_facts`).
const NAMED: &[&str] = &[
    "os_family", "distribution", "distribution_version", "distribution_major_version", "distribution_release", "distribution_file_variety", "hostname", "fqdn",
    "nodename", "domain", "kernel", "kernel_version", "architecture", "machine", "system", "pkg_mgr", "service_mgr", "python", "python_version", "user_id", "user_dir",
    "user_shell", "user_uid", "user_gid", "user_gecos", "real_user_id", "effective_user_id", "env", "default_ipv4", "default_ipv6", "all_ipv4_addresses",
    "all_ipv6_addresses", "interfaces", "processor", "processor_count", "processor_cores", "processor_vcpus", "processor_threads_per_core", "processor_nproc",
    "memtotal_mb", "memfree_mb", "memory_mb", "swaptotal_mb", "mounts", "devices", "date_time", "lsb", "selinux", "selinux_python_present", "virtualization_type",
    "virtualization_role", "virtualization_tech_guest", "virtualization_tech_host", "dns", "local", "machine_id", "cmdline", "proc_cmdline", "fips", "is_chroot",
    "apparmor", "userspace_bits", "userspace_architecture", "uptime_seconds", "loadavg", "locally_reachable_ips", "system_vendor", "product_name", "bios_vendor",
    "ssh_host_key_ed25519_public", "hostnqn", "iscsi_iqn", "fibre_channel_wwn", "device_links", "lvm",
];

/// A fact with its changing parts taken out (see the file's doc).
fn stable(name: &str, v: &Json) -> Json {
    let keys_only = |v: &Json| Json::Array(v.as_object().map(|m| m.keys().cloned().collect::<BTreeSet<_>>().into_iter().map(Json::String).collect()).unwrap_or_default());
    match name {
        "date_time" | "loadavg" => keys_only(v),
        "uptime_seconds" | "memfree_mb" => Json::Bool(v.is_u64()),
        "memory_mb" => serde_json::json!({"real": v["real"]["total"], "swap": v["swap"]["total"], "keys": keys_only(v)}),
        // ansible-core lists the mounts as its threads finish measuring them (an order that
        // changes from run to run): compared by mount point.
        "mounts" => {
            let mut all: Vec<Json> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let mut m = m.clone();
                    if let Some(o) = m.as_object_mut() {
                        for k in ["size_available", "block_available", "block_used", "inode_available", "inode_used"] {
                            if let Some(x) = o.get_mut(k) {
                                *x = Json::Bool(x.is_u64());
                            }
                        }
                    }
                    m
                })
                .collect();
            all.sort_by(|a, b| a["mount"].as_str().cmp(&b["mount"].as_str()));
            Json::Array(all)
        }
        "env" => {
            let keep = ["HOME", "USER", "LOGNAME", "SHELL", "PATH", "MAIL", "PWD"];
            Json::Object(v.as_object().into_iter().flatten().filter(|(k, _)| keep.contains(&k.as_str())).map(|(k, x)| (k.clone(), x.clone())).collect())
        }
        // ansible-core lists these in the order of a Python dict or set: the names are compared.
        "interfaces" | "virtualization_tech_guest" | "virtualization_tech_host" => Json::Array(v.as_array().into_iter().flatten().filter_map(Json::as_str).map(str::to_string).collect::<BTreeSet<_>>().into_iter().map(Json::String).collect()),
        _ => v.clone(),
    }
}

#[test]
fn facts_match_ansible_core_setup() {
    lab();
    let ans = Command::new("ansible")
        .args(["-i", "inventory/lab.yml", "188", "-m", "setup", "-e", "ansible_python_interpreter=/usr/bin/python3"])
        .current_dir(repo())
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .output()
        .expect("ansible (ansible-core from PyPI; .ci/run installs it)");
    let text = String::from_utf8_lossy(&ans.stdout);
    let json_start = text.find("=> {").map(|i| i + 3).unwrap_or_else(|| panic!("ansible -m setup gave no result:\n{text}{}", String::from_utf8_lossy(&ans.stderr)));
    let want: Json = serde_json::from_str(&text[json_start..]).expect("setup output is JSON");
    let want: serde_json::Map<String, Json> = want["ansible_facts"].as_object().expect("ansible_facts").iter().map(|(k, v)| (k.strip_prefix("ansible_").unwrap_or(k).to_string(), v.clone())).collect();

    let dir = tempfile::tempdir().unwrap();
    let play = write(dir.path(), "facts.yml", "- hosts: all\n  tasks:\n    - debug: var=ansible_facts\n    - assert:\n        that:\n          - ansible_os_family == ansible_facts.os_family\n          - ansible_facts['distribution'] == ansible_distribution\n");
    let run = Recover::new().args(["play", play.to_str().unwrap(), "-i", "inventory/lab.yml", "--host", "188", "--output", "json", "-e", "ansible_python_interpreter=/usr/bin/python3"]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let gathered = run.task_events().into_iter().find(|e| e["task"] == "Gathering Facts").expect("a Gathering Facts step");
    assert_eq!(gathered["status"], "ok");
    let got = run.task_events().into_iter().find(|e| e["task"].as_str().is_some_and(|t| t.starts_with("debug"))).expect("the debug step")["output"]["ansible_facts"].clone();
    let got = got.as_object().expect("ansible_facts is a mapping").clone();

    let mut failed = Vec::new();
    let mut passed = 0;
    for name in NAMED {
        match (want.get(*name), got.get(*name)) {
            (None, None) => passed += 1,
            (Some(w), Some(g)) if stable(name, w) == stable(name, g) => passed += 1,
            (w, g) => failed.push(format!("{name}:\n  ansible-core: {}\n  recover:      {}", w.map(|v| stable(name, v).to_string()).unwrap_or("(absent)".into()), g.map(|v| stable(name, v).to_string()).unwrap_or("(absent)".into()))),
        }
    }
    // Every interface ansible-core describes, described alike.
    for iface in want.get("interfaces").and_then(Json::as_array).into_iter().flatten().filter_map(Json::as_str) {
        let key = iface.replace(['-', ':', '.'], "_");
        let pick = |v: Option<&Json>| v.map(|v| ["device", "active", "type", "mtu", "macaddress", "ipv4", "ipv4_secondaries", "ipv6", "promisc", "pciid", "module", "speed"].iter().map(|k| v.get(*k).cloned().unwrap_or(Json::Null)).collect::<Vec<_>>());
        if pick(want.get(&key)) == pick(got.get(&key)) {
            passed += 1;
        } else {
            failed.push(format!("interface {iface}:\n  ansible-core: {:?}\n  recover:      {:?}", pick(want.get(&key)), pick(got.get(&key))));
        }
    }
    println!("{passed} passed, {} failed", failed.len());
    assert!(failed.is_empty(), "facts differ from ansible-core's setup:\n{}", failed.join("\n"));
}

#[test]
fn gathering_is_cached_for_the_run_and_setup_filters() {
    lab();
    let dir = tempfile::tempdir().unwrap();
    let play = write(dir.path(), "two.yml", "- hosts: all\n  tasks:\n    - debug: msg={{ ansible_hostname }}\n- hosts: all\n  tasks:\n    - setup:\n        filter: ['ansible_kernel', 'distribution*']\n      register: s\n    - assert:\n        that:\n          - s.ansible_facts.ansible_kernel == ansible_kernel\n          - s.ansible_facts.ansible_distribution is defined\n          - s.ansible_facts.ansible_os_family is not defined\n");
    let run = Recover::new().args(["play", play.to_str().unwrap(), "-i", "inventory/lab.yml", "--host", "188", "--output", "json", "-v"]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let gathers: Vec<Json> = run.task_events().into_iter().filter(|e| e["task"] == "Gathering Facts").collect();
    assert_eq!(gathers.len(), 2, "each play reports its Gathering Facts step");
    assert_eq!(gathers[1]["note"], "facts gathered earlier in this run", "the second play reuses the first's facts");
    // gather_facts: false gathers nothing, and facts are then undefined.
    let none = write(dir.path(), "none.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - assert:\n        that: ansible_facts is not defined or ansible_facts == {}\n");
    let run = Recover::new().args(["play", none.to_str().unwrap(), "-i", "inventory/lab.yml", "--host", "188", "--output", "json"]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.task_events().iter().any(|e| e["task"] == "Gathering Facts"));
}
