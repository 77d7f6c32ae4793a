//! Platform facts: the host's names, distribution, environment, kernel command line, virtualization, clock and local facts.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

/// Python's `socket.getfqdn()`: the names of the node name's address (its reverse lookup),
/// the first with a dot, else the first.
pub(super) fn fqdn(node: &str, lookup: &str) -> String {
    let names: Vec<&str> = lookup.lines().next().map(|l| l.split_whitespace().skip(1).collect()).unwrap_or_default();
    match (names.iter().find(|n| n.contains('.')), names.first()) {
        (Some(n), _) => n.to_string(),
        (None, Some(n)) => n.to_string(),
        (None, None) => node.to_string(),
    }
}

pub(super) fn lsb(text: &str) -> Json {
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

pub(super) fn env(b64: &str) -> Json {
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

/// `/proc/cmdline` as ansible-core reads it: `cmdline` keeps the last value of a key,
/// `proc_cmdline` a list of them.
pub(super) fn cmdline(text: &str) -> (Json, Json) {
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

pub(super) fn virtual_facts(s: &BTreeMap<String, String>, has: &dyn Fn(&str) -> bool, f: &mut Map<String, Json>) {
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

pub(super) fn date_time(text: &str) -> Json {
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
pub(super) fn local_fact(text: &str) -> Json {
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

pub(super) fn kv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').trim_matches('\'').to_string()))
        .collect()
}
