//! Network facts: interfaces, addresses and routes (ansible-core's Linux network collector), and the resolver's settings.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

pub(super) fn dns(text: &str) -> Json {
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

pub(super) fn prefix_to_mask(p: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(if p == 0 { 0 } else { u32::MAX << (32 - p) })
}

pub(super) fn network(net: &str, addr: &str, r4: &str, r6: &str, f: &mut Map<String, Json>) {
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
