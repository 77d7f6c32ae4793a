//! Hardware facts: processors, memory, mounts and block devices, read as ansible-core's Linux hardware collector reads them.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

pub(super) fn cpu(text: &str, nproc: &str, f: &mut Map<String, Json>) {
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

pub(super) fn memory(text: &str, f: &mut Map<String, Json>) {
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
pub(super) fn unescape(s: &str) -> String {
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
pub(super) fn mounts(mtab: &str, statfs: &str, uuids: &str, findmnt: &str) -> Json {
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
pub(super) fn human(bytes: f64) -> String {
    let units = [(1u64 << 50, "PB"), (1 << 40, "TB"), (1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
    for (limit, suffix) in units {
        if bytes >= limit as f64 {
            return format!("{:.2} {suffix}", bytes / limit as f64);
        }
    }
    format!("{bytes:.2} Bytes")
}

/// `/sys/block` read as `DEV/FILE:VALUE` lines (and `DEV/PART/FILE:VALUE`, `DEV/holders/H`).
pub(super) fn devices(text: &str) -> Json {
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
