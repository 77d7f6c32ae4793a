//! Facts (`gather_facts`, the `setup` module): one shell script, one round trip, reads what
//! ansible-core's Linux fact collectors read; [`parse`] turns its sections into the facts,
//! named as in `ansible_facts` (without the `ansible_` prefix). Each parser follows the
//! collector it stands for; `tests/facts.rs` compares the result with ansible-core's `setup`.

mod hardware;
mod network;
mod platform;

use std::collections::BTreeMap;

use hardware::{cpu, devices, memory, mounts};
use network::{dns, network};
use platform::{cmdline, date_time, env, fqdn, kv, local_fact, lsb, virtual_facts};
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
        assert_eq!(hardware::human(0.0), "0.00 Bytes");
        assert_eq!(hardware::human(8.0 * 1024.0 * 1024.0 * 1024.0), "8.00 GB");
    }
}
