//! Facts (`gather_facts`, the `setup` module): one shell script, one round trip, reads what
//! ansible-core's Linux fact collectors read; [`parse`] turns its sections into the facts,
//! named as in `ansible_facts` (without the `ansible_` prefix). Each parser follows the
//! collector it stands for; `tests/facts.rs` compares the result with ansible-core's `setup`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

/// The script: every section starts with a line `@@name`. It only reads. Local facts come
/// from `fact_path` (ansible-core's default: /etc/ansible/facts.d).
pub fn script(python: Option<&str>, fact_path: Option<&str>) -> String {
    let facts_d = crate::transport::quote::quote(fact_path.unwrap_or("/etc/ansible/facts.d").trim_end_matches('/'));
    let py = match python {
        Some(p) => crate::transport::quote::quote(p),
        None => "\"$(for p in python3.14 python3.13 python3.12 python3.11 python3.10 python3.9 python3.8 /usr/bin/python3 /usr/libexec/platform-python; do command -v $p && break; done | head -n1)\"".into(),
    };
    format!(r#"exec 2>/dev/null
s() {{ printf '\n@@%s\n' "$1"; }}
s uname; uname -s; uname -r; uname -v; uname -m; uname -n
s fqdn; a=$(getent ahosts "$(uname -n)" | awk 'NR==1{{print $1}}'); [ -n "$a" ] && getent hosts "$a"
s osrelease; cat /etc/os-release
s debian_version; cat /etc/debian_version
s lsb; if command -v lsb_release >/dev/null; then lsb_release -a; else printf 'FILE\n'; cat /etc/lsb-release; fi
s id; id -u; id -g; id -un; id -ru; id -rg; getent passwd "$(id -un)"
s env; env -0 | base64 -w0
s paths; for p in /usr/bin/apt-get /usr/bin/dnf /usr/bin/yum /usr/bin/zypper /usr/bin/pacman /sbin/apk /run/systemd/system /etc/init.d /sbin/openrc /.dockerenv /.dockerinit /proc/vz /proc/lve /proc/bc /proc/xen /dev/kvm /sys/fs/selinux /sys/kernel/security/apparmor; do test -e $p && echo $p; done
s proc1; cat /proc/1/comm
s cgroup1; cat /proc/1/cgroup
s environ1; tr '\0' '\n' < /proc/1/environ
s systemd_container; cat /run/systemd/container
s dmi; cd /sys/devices/virtual/dmi/id 2>/dev/null && grep -s . bios_date bios_vendor bios_version board_asset_tag board_name board_serial board_vendor board_version chassis_asset_tag chassis_serial chassis_vendor chassis_version product_name product_serial product_uuid product_version sys_vendor product_family | sed 's/:/=/'; cd /
s modules; cut -d' ' -f1 /proc/modules
s python; P={py}; [ -n "$P" ] && "$P" -c 'import sys,json
try:
    import selinux; se=True
except Exception:
    se=False
v=sys.version_info; print(json.dumps({{"executable": sys.executable, "version": [v[0], v[1], v[2], v[3], v[4]], "type": sys.implementation.name, "selinux": se}}))'
s selinux; command -v getenforce >/dev/null && getenforce
s net; ls -U /sys/class/net; cd /sys/class/net && grep -s . */address */mtu */operstate */type */flags */speed; for i in *; do [ -d $i/bridge ] && echo "$i/kind:bridge"; [ -d $i/bonding ] && echo "$i/kind:bonding"; done; ls -l */device */device/driver/module 2>/dev/null | sed -n 's|.* \([^ ]*\) -> .*/\([^/]*\)$|\1:\2|p'; cd /
s addr; ip -o addr show
s route4; ip -4 route get 8.8.8.8
s route6; ip -6 route get 2404:6800:400a:800::1012
s local4; ip -4 route show table local
s local6; ip -6 route show table local
s caps; C=$(command -v capsh || ls /usr/sbin/capsh /sbin/capsh | head -n1); [ -n "$C" ] && "$C" --print
s libselinux; ldconfig -p | grep -q 'libselinux.so.1 ' && echo present
s misc; printf 'hostnqn=%s\n' "$(cat /etc/nvme/hostnqn)"; printf 'iqn=%s\n' "$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)"; ls /sys/class/fc_host | while read -r h; do printf 'wwn=%s\n' "$(cat /sys/class/fc_host/$h/port_name)"; done
s disklinks; for k in ids labels masters uuids; do d=/dev/disk/by-${{k%s}}; [ $k = masters ] && continue; [ -d $d ] && for l in $d/*; do printf '%s|%s|%s\n' $k "${{l##*/}}" "$(basename "$(readlink $l)")"; done; done
s cpuinfo; cat /proc/cpuinfo
s nproc; nproc
s meminfo; cat /proc/meminfo
s mounts; cat /etc/mtab || cat /proc/mounts
s statfs; awk '$1 ~ /^\// || $1 ~ /:\// {{print $2}}' /etc/mtab /proc/mounts | sort -u | while read -r m; do m=$(printf '%b' "$m"); printf '%s|' "$m"; stat -f -c '%s %S %b %f %a %c %d' "$m" || echo; done
s uuids; lsblk -rno NAME,UUID
s binds; findmnt --list --noheadings --notruncate
s blk; cd /sys/block && grep -s . */removable */size */queue/rotational */queue/logical_block_size */queue/scheduler */queue/discard_granularity */device/vendor */device/model */*/partition */*/start */*/size; ls -d */holders/* 2>/dev/null; cd /
s date; e=$(date +%s); date -d @$e '+%Y-%m-%d|%d|%H|%M|%m|%S|%H:%M:%S|%Z|%z|%A|%w|%W|%Y|%Y%m%dT%H%M%S'; date -u -d @$e '+%Y-%m-%dT%H:%M:%SZ'; echo $e; date +%N; date -d @$e +%Z
s resolv; cat /etc/resolv.conf
s cmdline; cat /proc/cmdline
s machine_id; cat /etc/machine-id || cat /var/lib/dbus/machine-id
s uptime; cat /proc/uptime; cat /proc/loadavg
s sshkeys; for f in /etc/ssh/ssh_host_dsa_key.pub /etc/ssh/ssh_host_rsa_key.pub /etc/ssh/ssh_host_ecdsa_key.pub /etc/ssh/ssh_host_ed25519_key.pub; do test -r $f && {{ printf '%s ' "$(basename $f)"; cat $f; }}; done
s fips; cat /proc/sys/crypto/fips_enabled
s chroot; stat -c '%d %i' / /proc/1/root/.
s rootfs; stat -f -c '%T' /
s local; for f in {facts_d}/*.fact; do [ -e "$f" ] || continue; n=${{f##*/}}; printf '\n@@local:%s\n' "${{n%.fact}}"; if [ -x "$f" ]; then "$f"; else cat "$f"; fi; done
s end
"#)
}

/// The script's sections by name.
fn sections(out: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut name: Option<String> = None;
    let mut body = String::new();
    for line in out.split('\n') {
        if let Some(n) = line.strip_prefix("@@") {
            if let Some(prev) = name.take() {
                m.insert(prev, body.trim_end_matches('\n').to_string());
            }
            name = Some(n.to_string());
            body.clear();
            continue;
        }
        if name.is_some() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some(prev) = name {
        m.insert(prev, body.trim_end_matches('\n').to_string());
    }
    m
}

fn kv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').trim_matches('\'').to_string()))
        .collect()
}

/// The facts from the script's output.
pub fn parse(out: &str, subset: &[String]) -> Map<String, Json> {
    let s = sections(out);
    let get = |k: &str| s.get(k).map(String::as_str).unwrap_or("");
    let mut f = Map::new();
    let paths: Vec<&str> = get("paths").lines().collect();
    let has = |p: &str| paths.contains(&p);

    // platform
    let u: Vec<&str> = get("uname").lines().collect();
    let at = |i: usize| u.get(i).copied().unwrap_or("").to_string();
    f.insert("system".into(), json!(at(0)));
    f.insert("kernel".into(), json!(at(1)));
    f.insert("kernel_version".into(), json!(at(2)));
    f.insert("machine".into(), json!(at(3)));
    f.insert("architecture".into(), json!(at(3)));
    f.insert("userspace_architecture".into(), json!(at(3)));
    f.insert("userspace_bits".into(), json!(if at(3).contains("64") { "64" } else { "32" }));
    let node = at(4);
    f.insert("nodename".into(), json!(node));
    f.insert("hostname".into(), json!(node.split('.').next().unwrap_or("")));
    let fqdn = fqdn(&node, get("fqdn"));
    f.insert("domain".into(), json!(fqdn.split_once('.').map(|(_, d)| d).unwrap_or("")));
    f.insert("fqdn".into(), json!(fqdn));
    f.insert("machine_id".into(), json!(get("machine_id").trim()));
    f.insert("fips".into(), json!(get("fips").trim() == "1"));

    // distribution
    let os = kv(get("osrelease"));
    let id = os.get("ID").cloned().unwrap_or_default();
    let name = match id.as_str() {
        "debian" => "Debian".to_string(),
        "ubuntu" => "Ubuntu".to_string(),
        "centos" => "CentOS".to_string(),
        "rhel" => "RedHat".to_string(),
        "fedora" => "Fedora".to_string(),
        "rocky" => "Rocky".to_string(),
        "almalinux" => "AlmaLinux".to_string(),
        "alpine" => "Alpine".to_string(),
        "arch" => "Archlinux".to_string(),
        "opensuse-leap" | "opensuse" => "openSUSE Leap".to_string(),
        other => os.get("NAME").cloned().unwrap_or_else(|| other.to_string()),
    };
    let family = match name.as_str() {
        "Debian" | "Ubuntu" | "Raspbian" | "Kali" | "Linux Mint" | "Devuan" | "Pop!_OS" => "Debian",
        "RedHat" | "CentOS" | "Fedora" | "Rocky" | "AlmaLinux" | "OracleLinux" | "Amazon" => "RedHat",
        "Alpine" => "Alpine",
        "Archlinux" => "Archlinux",
        "openSUSE Leap" | "SLES" => "Suse",
        other => other,
    }
    .to_string();
    let mut version = os.get("VERSION_ID").cloned().unwrap_or_default();
    let mut release = os.get("VERSION_CODENAME").cloned().unwrap_or_default();
    if name == "Debian" {
        // ansible-core reads /etc/debian_version for the point release ("12.11").
        let dv = get("debian_version").trim().to_string();
        if dv.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            version = dv;
        }
        if release.is_empty() {
            release = os.get("VERSION").and_then(|v| v.split_once('(')).map(|(_, r)| r.trim_end_matches(')').to_string()).unwrap_or_default();
        }
    }
    f.insert("distribution".into(), json!(name));
    f.insert("os_family".into(), json!(family));
    f.insert("distribution_major_version".into(), json!(version.split('.').next().unwrap_or("")));
    if let Some((_, minor)) = version.split_once('.') {
        f.insert("distribution_minor_version".into(), json!(minor.split('.').next().unwrap_or("")));
    }
    f.insert("distribution_version".into(), json!(version));
    f.insert("distribution_release".into(), json!(release));
    f.insert("distribution_file_path".into(), json!("/etc/os-release"));
    f.insert("distribution_file_variety".into(), json!(family));
    f.insert("distribution_file_parsed".into(), json!(true));
    f.insert("lsb".into(), lsb(get("lsb")));
    f.insert(
        "pkg_mgr".into(),
        json!(if has("/usr/bin/apt-get") && family == "Debian" {
            "apt"
        } else if has("/usr/bin/dnf") {
            "dnf"
        } else if has("/usr/bin/yum") {
            "yum"
        } else if has("/usr/bin/zypper") {
            "zypper"
        } else if has("/usr/bin/pacman") {
            "pacman"
        } else if has("/sbin/apk") {
            "apk"
        } else if has("/usr/bin/apt-get") {
            "apt"
        } else {
            "unknown"
        }),
    );
    // ansible-core's ServiceMgrFactCollector: PID 1's name, unless it is `init` or a shell.
    let p1 = get("proc1").trim().to_string();
    let mgr = match p1.as_str() {
        "" | "init" => None,
        p if p.ends_with("sh") => None,
        "procd" => Some("openwrt_init".to_string()),
        "runit-init" => Some("runit".to_string()),
        "svscan" => Some("svc".to_string()),
        "openrc-init" => Some("openrc".to_string()),
        p => Some(p.to_string()),
    };
    let mgr = mgr.unwrap_or_else(|| {
        if has("/run/systemd/system") {
            "systemd"
        } else if has("/sbin/openrc") {
            "openrc"
        } else if has("/etc/init.d") {
            "sysvinit"
        } else {
            "service"
        }
        .to_string()
    });
    f.insert("service_mgr".into(), json!(mgr));

    // user
    let idl: Vec<&str> = get("id").lines().collect();
    let n = |i: usize| idl.get(i).and_then(|x| x.trim().parse::<u64>().ok()).map(Json::from).unwrap_or(Json::Null);
    let user = idl.get(2).copied().unwrap_or("").to_string();
    f.insert("user_id".into(), json!(user));
    f.insert("effective_user_id".into(), n(0));
    f.insert("effective_group_id".into(), n(1));
    f.insert("real_user_id".into(), n(3));
    f.insert("real_group_id".into(), n(4));
    if let Some(pw) = idl.get(5) {
        let p: Vec<&str> = pw.split(':').collect();
        if p.len() >= 7 {
            f.insert("user_uid".into(), json!(p[2].parse::<u64>().unwrap_or(0)));
            f.insert("user_gid".into(), json!(p[3].parse::<u64>().unwrap_or(0)));
            f.insert("user_gecos".into(), json!(p[4]));
            f.insert("user_dir".into(), json!(p[5]));
            f.insert("user_shell".into(), json!(p[6]));
        }
    }
    f.insert("env".into(), env(get("env")));

    // python
    if let Ok(p) = serde_json::from_str::<Json>(get("python").lines().last().unwrap_or("")) {
        let v = p["version"].as_array().cloned().unwrap_or_default();
        f.insert("python_version".into(), json!(format!("{}.{}.{}", v.first().unwrap_or(&json!(0)), v.get(1).unwrap_or(&json!(0)), v.get(2).unwrap_or(&json!(0)))));
        f.insert(
            "python".into(),
            json!({
                "executable": p["executable"], "has_sslcontext": true, "type": p["type"],
                "version": {"major": v.first(), "minor": v.get(1), "micro": v.get(2), "releaselevel": v.get(3), "serial": v.get(4)},
                "version_info": v,
            }),
        );
    }
    let se = get("selinux");
    let py_se = serde_json::from_str::<Json>(get("python").lines().last().unwrap_or("")).ok().and_then(|p| p["selinux"].as_bool()).unwrap_or(false);
    // ansible-core's own selinux shim needs only libselinux.
    let se_py = py_se || get("libselinux").trim() == "present";
    f.insert("selinux_python_present".into(), json!(se_py));
    f.insert(
        "selinux".into(),
        if !se_py {
            json!({"status": "Missing selinux Python library"})
        } else if !has("/sys/fs/selinux") {
            json!({"status": "disabled"})
        } else {
            json!({"status": "enabled", "mode": se.lines().last().unwrap_or("").to_lowercase()})
        },
    );
    f.insert("apparmor".into(), json!({"status": if has("/sys/kernel/security/apparmor") { "enabled" } else { "disabled" }}));

    // hardware
    let dmi = kv(get("dmi"));
    for k in [
        "bios_date", "bios_vendor", "bios_version", "board_asset_tag", "board_name", "board_serial", "board_vendor", "board_version", "chassis_asset_tag", "chassis_serial", "chassis_vendor",
        "chassis_version", "product_name", "product_serial", "product_uuid", "product_version",
    ] {
        let v = dmi.get(k).filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| "NA".into());
        f.insert(k.into(), json!(v));
    }
    f.insert("system_vendor".into(), json!(dmi.get("sys_vendor").filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| "NA".into())));
    f.insert("form_factor".into(), json!("NA"));
    cpu(get("cpuinfo"), get("nproc"), &mut f);
    memory(get("meminfo"), &mut f);
    f.insert("mounts".into(), mounts(get("mounts"), get("statfs"), get("uuids"), get("binds")));
    f.insert("devices".into(), devices(get("blk")));
    let (cmd, proc_cmd) = cmdline(get("cmdline"));
    f.insert("cmdline".into(), cmd);
    f.insert("proc_cmdline".into(), proc_cmd);
    let up: Vec<&str> = get("uptime").lines().collect();
    if let Some(secs) = up.first().and_then(|l| l.split_whitespace().next()).and_then(|x| x.parse::<f64>().ok()) {
        f.insert("uptime_seconds".into(), json!(secs as u64));
    }
    if let Some(l) = up.get(1) {
        let w: Vec<f64> = l.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect();
        if w.len() == 3 {
            f.insert("loadavg".into(), json!({"1m": w[0], "5m": w[1], "15m": w[2]}));
        }
    }
    for line in get("sshkeys").lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 3 {
            let kind = w[0].trim_start_matches("ssh_host_").trim_end_matches("_key.pub");
            f.insert(format!("ssh_host_key_{kind}_public"), json!(w[2]));
            f.insert(format!("ssh_host_key_{kind}_public_keytype"), json!(w[1]));
        }
    }
    // is_chroot: / against PID 1's root, else / against the root inode of its filesystem.
    let ch: Vec<&str> = get("chroot").lines().collect();
    let chroot = match (ch.first(), ch.get(1)) {
        (Some(a), Some(b)) => a != b,
        (Some(a), None) => {
            let ino: u64 = a.split_whitespace().nth(1).and_then(|x| x.parse().ok()).unwrap_or(2);
            let want = match get("rootfs").trim() {
                "btrfs" => 256,
                "xfs" => 128,
                _ => 2,
            };
            ino != want
        }
        _ => false,
    };
    f.insert("is_chroot".into(), json!(chroot));
    f.insert("dns".into(), dns(get("resolv")));
    let mut reach = json!({"ipv4": [], "ipv6": []});
    for line in get("local4").lines().chain(get("local6").lines()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 2 || w[0] != "local" {
            continue;
        }
        let key = if w[1].contains(':') { "ipv6" } else { "ipv4" };
        if let Some(list) = reach[key].as_array_mut() {
            if !list.iter().any(|x| x == w[1]) {
                list.push(json!(w[1]));
            }
        }
    }
    f.insert("locally_reachable_ips".into(), reach);
    if let Some(line) = get("caps").lines().find(|l| l.starts_with("Current:")) {
        let rest = line.split_once(':').map(|(_, r)| r.trim()).unwrap_or("");
        if rest == "=ep" {
            f.insert("system_capabilities_enforced".into(), json!("False"));
            f.insert("system_capabilities".into(), json!([]));
        } else {
            f.insert("system_capabilities_enforced".into(), json!("True"));
            let caps: Vec<String> = line.split('=').nth(1).unwrap_or("").split(',').map(|c| c.trim().to_string()).collect();
            f.insert("system_capabilities".into(), json!(caps));
        }
    }
    let misc = kv(get("misc"));
    f.insert("hostnqn".into(), json!(misc.get("hostnqn").cloned().unwrap_or_default()));
    f.insert("iscsi_iqn".into(), json!(misc.get("iqn").cloned().unwrap_or_default()));
    let wwn: Vec<String> = get("misc").lines().filter_map(|l| l.strip_prefix("wwn=")).map(|w| w.trim_start_matches("0x").to_string()).collect();
    f.insert("fibre_channel_wwn".into(), json!(wwn));
    let mut links = json!({"ids": {}, "labels": {}, "masters": {}, "uuids": {}});
    for line in get("disklinks").lines() {
        let w: Vec<&str> = line.split('|').collect();
        if w.len() == 3 {
            if let Some(m) = links[w[0]].as_object_mut() {
                match m.get_mut(w[2]) {
                    Some(Json::Array(a)) => a.push(json!(w[1])),
                    _ => {
                        m.insert(w[2].into(), json!([w[1]]));
                    }
                }
            }
        }
    }
    f.insert("device_links".into(), links);
    // LVM needs root to read; ansible-core says "N/A" without it.
    f.insert("lvm".into(), json!("N/A"));
    network(get("net"), get("addr"), get("route4"), get("route6"), &mut f);
    virtual_facts(&s, &has, &mut f);
    f.insert("date_time".into(), date_time(get("date")));
    let mut local = Map::new();
    for (k, v) in &s {
        if let Some(name) = k.strip_prefix("local:") {
            local.insert(name.to_string(), local_fact(v));
        }
    }
    f.insert("local".into(), Json::Object(local));
    f.insert("gather_subset".into(), json!(if subset.is_empty() { vec!["all".to_string()] } else { subset.to_vec() }));
    f.insert("module_setup".into(), json!(true));
    f
}

/// Python's `socket.getfqdn()`: the names of the node name's address (its reverse lookup),
/// the first with a dot, else the first.
fn fqdn(node: &str, lookup: &str) -> String {
    let names: Vec<&str> = lookup.lines().next().map(|l| l.split_whitespace().skip(1).collect()).unwrap_or_default();
    match (names.iter().find(|n| n.contains('.')), names.first()) {
        (Some(n), _) => n.to_string(),
        (None, Some(n)) => n.to_string(),
        (None, None) => node.to_string(),
    }
}

fn lsb(text: &str) -> Json {
    let mut m = Map::new();
    if let Some(rest) = text.strip_prefix("FILE") {
        let k = kv(rest);
        for (from, to) in [("DISTRIB_ID", "id"), ("DISTRIB_RELEASE", "release"), ("DISTRIB_DESCRIPTION", "description"), ("DISTRIB_CODENAME", "codename")] {
            if let Some(v) = k.get(from) {
                m.insert(to.into(), json!(v));
            }
        }
    } else {
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else { continue };
            let v = v.trim();
            let key = match k.trim() {
                "Distributor ID" => "id",
                "Release" => "release",
                "Description" => "description",
                "Codename" => "codename",
                _ => continue,
            };
            m.insert(key.into(), json!(v));
        }
    }
    if let Some(r) = m.get("release").and_then(Json::as_str).map(str::to_string) {
        m.insert("major_release".into(), json!(r.split('.').next().unwrap_or("")));
    }
    Json::Object(m)
}

fn env(b64: &str) -> Json {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap_or_default();
    let mut m = Map::new();
    for entry in raw.split(|b| *b == 0) {
        let e = String::from_utf8_lossy(entry);
        if let Some((k, v)) = e.split_once('=') {
            if k.starts_with("__") || k.starts_with("RECOVER_") {
                continue;
            }
            // recover's shell adds the sbin folders to PATH (as sudo's secure_path does);
            // the login's own PATH is what the facts report.
            let v = if k == "PATH" { v.strip_suffix(":/usr/local/sbin:/usr/sbin:/sbin").unwrap_or(v) } else { v };
            m.insert(k.to_string(), json!(v));
        }
    }
    Json::Object(m)
}

fn cpu(text: &str, nproc: &str, f: &mut Map<String, Json>) {
    let mut processor = Vec::new();
    let mut physical = std::collections::BTreeSet::new();
    let (mut cores, mut siblings) = (None::<u64>, None::<u64>);
    let mut count = 0u64;
    let mut flags = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => {
                processor.push(json!(v));
                count += 1;
            }
            "vendor_id" | "model name" | "Processor" | "vendor" | "cpu" | "Hardware" => processor.push(json!(v)),
            "physical id" => {
                physical.insert(v.to_string());
            }
            "cpu cores" => cores = v.parse().ok(),
            "siblings" => siblings = v.parse().ok(),
            "flags" if flags.is_empty() => flags = v.split_whitespace().map(|s| json!(s)).collect(),
            _ => {}
        }
    }
    let sockets = (physical.len() as u64).max(1);
    let cores = cores.unwrap_or(1);
    let threads = siblings.map(|s| (s / cores.max(1)).max(1)).unwrap_or(1);
    f.insert("processor".into(), Json::Array(processor));
    f.insert("processor_count".into(), json!(sockets));
    f.insert("processor_cores".into(), json!(cores));
    f.insert("processor_threads_per_core".into(), json!(threads));
    f.insert("processor_vcpus".into(), json!(if siblings.is_some() { threads * cores * sockets } else { count }));
    f.insert("processor_nproc".into(), json!(nproc.trim().parse::<u64>().unwrap_or(count)));
    if !flags.is_empty() {
        f.insert("flags".into(), Json::Array(flags));
    }
}

fn memory(text: &str, f: &mut Map<String, Json>) {
    let mut m: BTreeMap<String, i64> = BTreeMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        if let Some(n) = v.split_whitespace().next().and_then(|x| x.parse::<i64>().ok()) {
            m.insert(k.trim().to_lowercase(), n / 1024);
        }
    }
    let g = |k: &str| m.get(k).copied().unwrap_or(0);
    f.insert("memtotal_mb".into(), json!(g("memtotal")));
    f.insert("memfree_mb".into(), json!(g("memfree")));
    f.insert("swaptotal_mb".into(), json!(g("swaptotal")));
    f.insert("swapfree_mb".into(), json!(g("swapfree")));
    let nocache_free = g("buffers") + g("cached") + g("memfree");
    f.insert(
        "memory_mb".into(),
        json!({
            "real": {"total": g("memtotal"), "used": g("memtotal") - g("memfree"), "free": g("memfree")},
            "nocache": {"free": nocache_free, "used": g("memtotal") - nocache_free},
            "swap": {"total": g("swaptotal"), "free": g("swapfree"), "used": g("swaptotal") - g("swapfree"), "cached": g("swapcached")},
        }),
    );
}

/// `/etc/mtab` escapes spaces and the like as octal (`\040`).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?') as char);
            i += 4;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// ansible-core's mounts: mtab's entries with statvfs sizes; a bind mount (findmnt's source
/// ends with `[...]`) gets `,bind` in its options unless they say so already.
fn mounts(mtab: &str, statfs: &str, uuids: &str, findmnt: &str) -> Json {
    let binds: std::collections::BTreeSet<&str> = findmnt.lines().filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 2 && f[1].contains(']')).then_some(f[0])
    }).collect();
    let stats: BTreeMap<String, Vec<u64>> = statfs.lines().filter_map(|l| l.split_once('|')).map(|(m, r)| (m.to_string(), r.split_whitespace().filter_map(|x| x.parse().ok()).collect())).collect();
    let uuid: BTreeMap<String, String> = uuids.lines().filter_map(|l| l.split_once(' ')).filter(|(_, u)| !u.is_empty()).map(|(n, u)| (format!("/dev/{n}"), u.to_string())).collect();
    let mut out = Vec::new();
    for line in mtab.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 4 {
            continue;
        }
        let (device, mount, fstype) = (unescape(w[0]), unescape(w[1]), w[2]);
        let mut options = w[3].to_string();
        if binds.contains(mount.as_str()) && !options.contains("bind") {
            options.push_str(",bind");
        }
        if (!device.starts_with('/') && !device.starts_with('\\') && !device.contains(":/")) || fstype == "none" {
            continue;
        }
        let mut m = json!({
            "mount": mount, "device": device, "fstype": fstype, "options": options,
            "dump": w.get(4).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0),
            "passno": w.get(5).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0),
            "uuid": uuid.get(&device).cloned().unwrap_or_else(|| "N/A".into()),
        });
        if let Some(st) = stats.get(&mount).filter(|s| s.len() == 7) {
            let (bsize, frsize, blocks, bfree, bavail, files, ffree) = (st[0], st[1], st[2], st[3], st[4], st[5], st[6]);
            let o = m.as_object_mut().expect("object");
            o.insert("size_total".into(), json!(frsize * blocks));
            o.insert("size_available".into(), json!(frsize * bavail));
            o.insert("block_size".into(), json!(bsize));
            o.insert("block_total".into(), json!(blocks));
            o.insert("block_available".into(), json!(bavail));
            o.insert("block_used".into(), json!(blocks - bfree));
            o.insert("inode_total".into(), json!(files));
            o.insert("inode_available".into(), json!(ffree));
            o.insert("inode_used".into(), json!(files - ffree));
        }
        out.push(m);
    }
    Json::Array(out)
}

/// ansible-core's `bytes_to_human`: "8.00 GB".
fn human(bytes: f64) -> String {
    let units = [(1u64 << 50, "PB"), (1 << 40, "TB"), (1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
    for (limit, suffix) in units {
        if bytes >= limit as f64 {
            return format!("{:.2} {suffix}", bytes / limit as f64);
        }
    }
    format!("{bytes:.2} Bytes")
}

/// `/sys/block` read as `DEV/FILE:VALUE` lines (and `DEV/PART/FILE:VALUE`, `DEV/holders/H`).
fn devices(text: &str) -> Json {
    let mut attrs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut parts: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
    let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let (path, value) = match line.split_once(':') {
            Some((p, v)) => (p, v.trim()),
            None => (line, ""),
        };
        let w: Vec<&str> = path.split('/').collect();
        match w.as_slice() {
            [dev, "holders", h] => holders.entry(dev.to_string()).or_default().push(h.to_string()),
            [dev, file] => {
                attrs.entry(dev.to_string()).or_default().insert(file.to_string(), value.to_string());
            }
            [dev, "queue", file] | [dev, "device", file] if !parts.get(*dev).is_some_and(|p| p.contains_key(w[1])) => {
                attrs.entry(dev.to_string()).or_default().insert(file.to_string(), value.to_string());
            }
            [dev, part, file] => {
                parts.entry(dev.to_string()).or_default().entry(part.to_string()).or_default().insert(file.to_string(), value.to_string());
            }
            _ => {}
        }
    }
    let mut devs = Map::new();
    for (name, a) in attrs {
        let g = |k: &str| a.get(k).cloned().unwrap_or_default();
        let sectors: u64 = g("size").parse().unwrap_or(0);
        let ss: u64 = g("logical_block_size").parse().unwrap_or(512);
        let sched = g("scheduler");
        let sched = sched.split('[').nth(1).and_then(|x| x.split(']').next()).map(str::to_string).unwrap_or(sched);
        let opt = |k: &str| a.get(k).filter(|v| !v.is_empty()).map(|v| json!(v)).unwrap_or(Json::Null);
        let mut p = Map::new();
        for (pn, pa) in parts.get(&name).into_iter().flatten().filter(|(_, pa)| pa.contains_key("partition")) {
            let psec: u64 = pa.get("size").and_then(|x| x.parse().ok()).unwrap_or(0);
            p.insert(pn.clone(), json!({"start": pa.get("start").cloned().unwrap_or_default(), "sectors": psec, "sectorsize": ss, "size": human((psec * ss) as f64), "uuid": null, "holders": [], "links": {"ids": [], "labels": [], "masters": [], "uuids": []}}));
        }
        devs.insert(
            name.clone(),
            json!({
                "removable": g("removable"), "rotational": g("rotational"), "sectors": sectors, "sectorsize": ss.to_string(), "size": human((sectors * 512) as f64),
                "scheduler_mode": sched, "support_discard": g("discard_granularity"), "vendor": opt("vendor"), "model": opt("model"),
                "holders": holders.get(&name).cloned().unwrap_or_default(), "partitions": p, "host": "", "virtual": 1,
                "links": {"ids": [], "labels": [], "masters": [], "uuids": []}, "sas_address": null, "sas_device_handle": null,
            }),
        );
    }
    Json::Object(devs)
}

/// `/proc/cmdline` as ansible-core reads it: `cmdline` keeps the last value of a key,
/// `proc_cmdline` a list of them.
fn cmdline(text: &str) -> (Json, Json) {
    let words = shell_words::split(text.trim()).unwrap_or_else(|_| text.split_whitespace().map(str::to_string).collect());
    let (mut a, mut b) = (Map::new(), Map::new());
    for w in words {
        let (k, v) = match w.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (w.clone(), json!(true)),
        };
        a.insert(k.clone(), v.clone());
        match b.get_mut(&k) {
            Some(Json::Array(list)) => list.push(v),
            Some(prev) => {
                let p = prev.clone();
                *prev = json!([p, v]);
            }
            None => {
                b.insert(k, v);
            }
        }
    }
    (Json::Object(a), Json::Object(b))
}

fn dns(text: &str) -> Json {
    let mut m = Map::new();
    let mut ns = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        match w[0] {
            "nameserver" if w.len() > 1 => ns.push(json!(w[1])),
            "domain" if w.len() > 1 => {
                m.insert("domain".into(), json!(w[1]));
            }
            "search" => {
                m.insert("search".into(), json!(w[1..]));
            }
            "sortlist" => {
                m.insert("sortlist".into(), json!(w[1..]));
            }
            "options" => {
                let mut o = Map::new();
                for opt in &w[1..] {
                    match opt.split_once(':') {
                        Some((k, v)) => o.insert(k.into(), json!(v)),
                        None => o.insert((*opt).into(), json!(true)),
                    };
                }
                m.insert("options".into(), Json::Object(o));
            }
            _ => {}
        }
    }
    if !ns.is_empty() {
        m.insert("nameservers".into(), Json::Array(ns));
    }
    Json::Object(m)
}

fn prefix_to_mask(p: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(if p == 0 { 0 } else { u32::MAX << (32 - p) })
}

fn network(net: &str, addr: &str, r4: &str, r6: &str, f: &mut Map<String, Json>) {
    let mut names = Vec::new();
    let mut ifaces: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    // `ls -U` names first, then `IFACE/FILE:VALUE` lines.
    let mut attrs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut order = Vec::new();
    for line in net.lines() {
        match line.split_once(':') {
            Some((path, value)) if path.contains('/') => {
                let (dev, file) = path.split_once('/').unwrap_or((path, ""));
                let file = if file == "device/driver/module" { "module" } else { file };
                attrs.entry(dev.to_string()).or_default().insert(file.to_string(), value.trim().to_string());
            }
            _ if !line.contains('/') && !line.trim().is_empty() => order.push(line.trim().to_string()),
            _ => {}
        }
    }
    let rows: Vec<Vec<String>> = order
        .iter()
        .map(|i| {
            let a = attrs.get(i).cloned().unwrap_or_default();
            let g = |k: &str| a.get(k).cloned().unwrap_or_default();
            vec![i.clone(), g("address"), g("mtu"), g("operstate"), g("type"), g("flags"), g("device"), g("module"), g("speed"), g("kind")]
        })
        .collect();
    for w in &rows {
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        let mut m = Map::new();
        m.insert("device".into(), json!(w[0]));
        if !w[1].is_empty() && w[1] != "00:00:00:00:00:00" {
            m.insert("macaddress".into(), json!(w[1]));
        }
        if let Ok(mtu) = w[2].parse::<u64>() {
            m.insert("mtu".into(), json!(mtu));
        }
        m.insert("active".into(), json!(w[3] != "down"));
        let kind = match (w[9].trim(), w[4]) {
            ("bridge", _) => "bridge",
            ("bonding", _) => "bonding",
            (_, "1") => "ether",
            (_, "512") => "ppp",
            (_, "772") => "loopback",
            (_, "778") => "tunnel",
            _ => "unknown",
        };
        m.insert("type".into(), json!(kind));
        let flags = u64::from_str_radix(w[5].trim_start_matches("0x"), 16).unwrap_or(0);
        m.insert("promisc".into(), json!(flags & 0x100 != 0));
        if !w[6].is_empty() {
            m.insert("pciid".into(), json!(w[6]));
        }
        if !w[7].is_empty() {
            m.insert("module".into(), json!(w[7]));
        }
        if let Ok(sp) = w[8].trim().parse::<i64>() {
            m.insert("speed".into(), json!(sp));
        }
        names.push(w[0].to_string());
        ifaces.insert(w[0].to_string(), m);
    }
    let (mut all4, mut all6) = (Vec::new(), Vec::new());
    for line in addr.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 4 {
            continue;
        }
        let dev = w[1].trim_end_matches(':').split('@').next().unwrap_or("").to_string();
        let Some(m) = ifaces.get_mut(&dev) else { continue };
        let Some((ip, pfx)) = w[3].split_once('/') else { continue };
        let field = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1)).copied();
        if w[2] == "inet" {
            let p: u32 = pfx.parse().unwrap_or(32);
            let a: std::net::Ipv4Addr = ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
            let mask = prefix_to_mask(p);
            let netw = std::net::Ipv4Addr::from(u32::from(a) & u32::from(mask));
            let entry = json!({"address": ip, "broadcast": field("brd").unwrap_or(""), "netmask": mask.to_string(), "network": netw.to_string(), "prefix": pfx});
            if w.contains(&"secondary") || m.contains_key("ipv4") {
                match m.get_mut("ipv4_secondaries") {
                    Some(Json::Array(a)) => a.push(entry),
                    _ => {
                        m.insert("ipv4_secondaries".into(), json!([entry]));
                    }
                }
            } else {
                m.insert("ipv4".into(), entry);
            }
            if !ip.starts_with("127.") {
                all4.push(json!(ip));
            }
        } else if w[2] == "inet6" {
            let entry = json!({"address": ip, "prefix": pfx, "scope": field("scope").unwrap_or("")});
            match m.get_mut("ipv6") {
                Some(Json::Array(a)) => a.push(entry),
                _ => {
                    m.insert("ipv6".into(), json!([entry]));
                }
            }
            if ip != "::1" {
                all6.push(json!(ip));
            }
        }
    }
    let route = |text: &str| -> Option<(String, Option<String>, Option<String>)> {
        let w: Vec<&str> = text.split_whitespace().collect();
        let field = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1)).map(|s| s.to_string());
        Some((field("dev")?, field("src"), field("via")))
    };
    let mut d4 = Map::new();
    if let Some((dev, src, via)) = route(r4) {
        d4.insert("interface".into(), json!(dev));
        d4.insert("address".into(), json!(src.unwrap_or_default()));
        d4.insert("gateway".into(), json!(via.unwrap_or_default()));
        if let Some(m) = ifaces.get(&dev) {
            if let Some(Json::Object(v4)) = m.get("ipv4") {
                for k in ["broadcast", "netmask", "network", "prefix"] {
                    if let Some(v) = v4.get(k) {
                        d4.insert(k.into(), v.clone());
                    }
                }
            }
            for k in ["macaddress", "mtu", "type"] {
                if let Some(v) = m.get(k) {
                    d4.insert(k.into(), v.clone());
                }
            }
            d4.insert("alias".into(), json!(dev));
        }
    }
    let mut d6 = Map::new();
    if let Some((dev, src, via)) = route(r6) {
        d6.insert("interface".into(), json!(dev));
        d6.insert("address".into(), json!(src.clone().unwrap_or_default()));
        d6.insert("gateway".into(), json!(via.unwrap_or_default()));
        if let Some(m) = ifaces.get(&dev) {
            if let Some(Json::Array(v6)) = m.get("ipv6") {
                if let Some(e) = v6.iter().find(|e| e["address"].as_str() == src.as_deref()) {
                    d6.insert("prefix".into(), e["prefix"].clone());
                    d6.insert("scope".into(), e["scope"].clone());
                }
            }
            for k in ["macaddress", "mtu", "type"] {
                if let Some(v) = m.get(k) {
                    d6.insert(k.into(), v.clone());
                }
            }
        }
    }
    f.insert("default_ipv4".into(), Json::Object(d4));
    f.insert("default_ipv6".into(), Json::Object(d6));
    f.insert("all_ipv4_addresses".into(), Json::Array(all4));
    f.insert("all_ipv6_addresses".into(), Json::Array(all6));
    f.insert("interfaces".into(), json!(names));
    for (name, m) in ifaces {
        f.insert(name.replace(['-', ':', '.'], "_"), Json::Object(m));
    }
}

fn virtual_facts(s: &BTreeMap<String, String>, has: &dyn Fn(&str) -> bool, f: &mut Map<String, Json>) {
    let get = |k: &str| s.get(k).map(String::as_str).unwrap_or("");
    let (mut guest, mut host) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
    let mut found: Option<(String, String)> = None;
    let set = |found: &mut Option<(String, String)>, t: &str, r: &str| {
        if found.is_none() {
            *found = Some((t.to_string(), r.to_string()));
        }
    };
    let docker = regex::Regex::new(r"/docker(/|-[0-9a-f]+\.scope)").expect("static regex");
    for line in get("cgroup1").lines() {
        if docker.is_match(line) {
            guest.insert("docker");
            set(&mut found, "docker", "guest");
        }
        if line.contains("/lxc/") || line.contains("/machine.slice/machine-lxc") {
            guest.insert("lxc");
            set(&mut found, "lxc", "guest");
        }
        if line.contains("/system.slice/containerd.service") {
            guest.insert("containerd");
            set(&mut found, "containerd", "guest");
        }
    }
    for line in get("environ1").lines() {
        if line.contains("container=lxc") {
            guest.insert("lxc");
            set(&mut found, "lxc", "guest");
        }
        if line.contains("container=podman") {
            guest.insert("podman");
            set(&mut found, "podman", "guest");
        }
        if line.starts_with("container=") && line.len() > 10 {
            guest.insert("container");
            set(&mut found, "container", "guest");
        }
    }
    if has("/proc/vz") && !has("/proc/lve") {
        let role = if has("/proc/bc") { "host" } else { "guest" };
        if role == "host" {
            host.insert("openvz");
        } else {
            guest.insert("openvz");
        }
        let t = found.clone();
        found = Some(("openvz".into(), t.map(|x| x.1).unwrap_or_else(|| role.into())));
    }
    let sc = get("systemd_container").trim().to_string();
    if !sc.is_empty() {
        guest.insert(Box::leak(sc.clone().into_boxed_str()));
        set(&mut found, &sc, "guest");
    }
    if has("/.dockerenv") || has("/.dockerinit") {
        guest.insert("docker");
        set(&mut found, "docker", "guest");
    }
    if ["docker", "lxc", "podman", "openvz", "containerd"].iter().any(|t| guest.contains(t)) || !sc.is_empty() {
        guest.insert("container");
    }
    if has("/proc/xen") {
        guest.insert("xen");
        set(&mut found, "xen", "guest");
    }
    let dmi = kv(get("dmi"));
    let d = |k: &str| dmi.get(k).cloned().unwrap_or_default();
    let (product, vendor, bios) = (d("product_name"), d("sys_vendor"), d("bios_vendor"));
    let mut dmi_type = |found: &mut Option<(String, String)>, g: &'static str, t: &str| {
        guest.insert(g);
        if found.is_none() {
            *found = Some((t.to_string(), "guest".into()));
        }
    };
    if ["KVM", "KVM Server", "Bochs", "AHV", "CloudStack KVM Hypervisor"].contains(&product.as_str()) {
        dmi_type(&mut found, "kvm", "kvm");
    }
    if vendor == "oVirt" {
        dmi_type(&mut found, "oVirt", "oVirt");
    }
    if product.starts_with("VMware") {
        dmi_type(&mut found, "VMware", "VMware");
    }
    if ["OpenStack Compute", "OpenStack Nova"].contains(&product.as_str()) || vendor == "OpenStack Foundation" {
        dmi_type(&mut found, "openstack", "openstack");
    }
    if bios == "Xen" {
        dmi_type(&mut found, "xen", "xen");
    }
    if bios == "innotek GmbH" {
        dmi_type(&mut found, "virtualbox", "virtualbox");
    }
    if ["Amazon EC2", "DigitalOcean", "Hetzner", "Linode"].contains(&bios.as_str()) || ["QEMU", "Amazon EC2", "DigitalOcean", "Google", "Scaleway", "Nutanix"].contains(&vendor.as_str()) {
        dmi_type(&mut found, "kvm", "kvm");
    }
    if vendor == "KubeVirt" {
        dmi_type(&mut found, "KubeVirt", "KubeVirt");
    }
    if vendor == "Microsoft Corporation" {
        dmi_type(&mut found, "VirtualPC", "VirtualPC");
    }
    if vendor == "Parallels Software International Inc." {
        dmi_type(&mut found, "parallels", "parallels");
    }
    for line in get("cpuinfo").lines() {
        if line.starts_with("model name") && line.contains("QEMU Virtual CPU") {
            guest.insert("kvm");
            set(&mut found, "kvm", "guest");
        }
    }
    let modules: Vec<&str> = get("modules").lines().collect();
    if modules.contains(&"kvm") {
        host.insert("kvm");
        set(&mut found, "kvm", "host");
    }
    if modules.contains(&"vboxdrv") {
        host.insert("virtualbox");
        set(&mut found, "virtualbox", "host");
    }
    if modules.contains(&"virtio") {
        host.insert("kvm");
        set(&mut found, "kvm", "guest");
    }
    if has("/dev/kvm") {
        host.insert("kvm");
        set(&mut found, "kvm", "host");
    }
    let (t, r) = found.unwrap_or_else(|| ("NA".into(), "NA".into()));
    f.insert("virtualization_type".into(), json!(t));
    f.insert("virtualization_role".into(), json!(r));
    f.insert("virtualization_tech_guest".into(), json!(guest.into_iter().collect::<Vec<_>>()));
    f.insert("virtualization_tech_host".into(), json!(host.into_iter().collect::<Vec<_>>()));
}

fn date_time(text: &str) -> Json {
    let l: Vec<&str> = text.lines().collect();
    let w: Vec<&str> = l.first().copied().unwrap_or("").split('|').collect();
    if w.len() < 14 {
        return json!({});
    }
    let utc = l.get(1).copied().unwrap_or("");
    let epoch = l.get(2).copied().unwrap_or("").trim();
    let micro = l.get(3).map(|n| n.chars().take(6).collect::<String>()).unwrap_or_default();
    json!({
        "date": w[0], "day": w[1], "hour": w[2], "minute": w[3], "month": w[4], "second": w[5], "time": w[6],
        "tz": w[7], "tz_dst": l.get(4).copied().unwrap_or(w[7]), "tz_offset": w[8], "weekday": w[9], "weekday_number": w[10], "weeknumber": w[11], "year": w[12],
        "epoch": epoch, "epoch_int": epoch, "iso8601": utc, "iso8601_micro": utc.replace('Z', &format!(".{micro}Z")),
        "iso8601_basic": format!("{}{micro}", w[13]), "iso8601_basic_short": w[13],
    })
}

/// A `facts.d` file: JSON, else INI (sections of key=value), else the text.
fn local_fact(text: &str) -> Json {
    if let Ok(v) = serde_json::from_str::<Json>(text) {
        return v;
    }
    let mut out = Map::new();
    let mut section: Option<String> = None;
    let mut ok = false;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') && t.ends_with(']') {
            section = Some(t[1..t.len() - 1].to_string());
            out.insert(section.clone().unwrap_or_default(), json!({}));
            ok = true;
            continue;
        }
        let (Some(sec), Some((k, v))) = (&section, t.split_once('=').or_else(|| t.split_once(':'))) else {
            return json!(format!("error loading facts as JSON or ini - please check content: {text}"));
        };
        if let Some(Json::Object(m)) = out.get_mut(sec) {
            m.insert(k.trim().to_lowercase(), json!(v.trim()));
        }
    }
    if ok {
        Json::Object(out)
    } else {
        json!(text)
    }
}

/// `filter:` of `setup`: fnmatch patterns on the fact names (with or without `ansible_`).
pub fn filtered(facts: Map<String, Json>, patterns: &[String]) -> Map<String, Json> {
    if patterns.is_empty() {
        return facts;
    }
    let pats: Vec<glob::Pattern> = patterns.iter().filter_map(|p| glob::Pattern::new(p).ok()).collect();
    facts.into_iter().filter(|(k, _)| pats.iter().any(|p| p.matches(k) || p.matches(&format!("ansible_{k}")))).collect()
}

/// The variables the facts give a host: `ansible_facts`, and each as `ansible_<name>`.
pub fn as_vars(facts: &Map<String, Json>) -> crate::template::Vars {
    let mut v = crate::template::Vars::new();
    for (k, x) in facts {
        if matches!(k.as_str(), "gather_subset" | "module_setup") {
            v.insert(k.clone(), x.clone());
        }
        v.insert(format!("ansible_{k}"), x.clone());
    }
    v.insert("ansible_facts".into(), Json::Object(facts.clone()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_a_few_parsers() {
        let out = "junk\n@@uname\nLinux\n6.1.0\n#1 SMP\nx86_64\nweb1.example.org\n@@osrelease\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n@@debian_version\n12.11\n@@meminfo\nMemTotal: 2048000 kB\nMemFree: 1024000 kB\n@@end\n";
        let f = parse(out, &[]);
        assert_eq!(f["hostname"], "web1");
        assert_eq!(f["domain"], "example.org");
        assert_eq!(f["os_family"], "Debian");
        assert_eq!(f["distribution_version"], "12.11");
        assert_eq!(f["distribution_major_version"], "12");
        assert_eq!(f["memtotal_mb"], 2000);
        assert_eq!(f["memory_mb"]["real"]["used"], 1000);
    }

    #[test]
    fn resolv_conf_and_cmdline() {
        let d = dns("# c\nnameserver 10.0.0.1\nnameserver 10.0.0.2\nsearch a b\noptions ndots:2 rotate\n");
        assert_eq!(d["nameservers"], json!(["10.0.0.1", "10.0.0.2"]));
        assert_eq!(d["options"]["ndots"], "2");
        assert_eq!(d["options"]["rotate"], true);
        let (a, b) = cmdline("ro quiet console=tty0 console=ttyS0");
        assert_eq!(a["console"], "ttyS0");
        assert_eq!(b["console"], json!(["tty0", "ttyS0"]));
        assert_eq!(human(0.0), "0.00 Bytes");
        assert_eq!(human(8.0 * 1024.0 * 1024.0 * 1024.0), "8.00 GB");
    }
}
