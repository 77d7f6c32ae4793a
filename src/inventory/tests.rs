use super::*;
use serde_json::json;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn sop_fleet_graph() {
    let inv = Inventory::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/inventory/awoooi.yml"))).unwrap();
    let g = inv.graph("all", false);
    // As ansible-inventory 2.19 prints it: definition order, `ungrouped` first.
    assert!(g.starts_with("@all:\n  |--@ungrouped:\n  |--@data:\n  |  |--188\n  |--@registry:\n  |  |--110\n"), "{g}");
    assert!(g.contains("  |--@k3s:\n  |  |--@k3s_server:\n  |  |  |--120\n  |  |--@k3s_agent:\n  |  |  |--121\n"), "{g}");
    assert_eq!(pattern::select(&inv, "k3s").unwrap(), ["120", "121"]);
    assert_eq!(pattern::select(&inv, "k3s:!121").unwrap(), ["120"]);
    assert_eq!(pattern::select(&inv, "188").unwrap(), ["188"]);
    let v = inv.host_vars("120");
    // `all.vars.vip` as written in the file reaches the host.
    let raw = crate::yaml::load_file(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/inventory/awoooi.yml"))).unwrap().to_json();
    assert_eq!(v["vip"], raw["all"]["vars"]["vip"]);
    assert!(v["vip"].is_string());
    assert_eq!(v["k3s_namespace"], json!("awoooi-prod"));
    assert_eq!(inv.group_names("120"), ["k3s", "k3s_server"]);
}

#[test]
fn list_has_ansible_shape() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "hosts.yml", "all:\n  hosts:\n    lone:\n  children:\n    web:\n      hosts:\n        w1: {x: 1}\n    empty:\n");
    let inv = Inventory::load(&p).unwrap();
    let hosts: Vec<String> = inv.hosts.keys().cloned().collect();
    let j = inv.to_list_json(&hosts);
    assert_eq!(
        j,
        json!({
            "_meta": {"hostvars": {"w1": {"x": 1}}, "profile": "inventory_legacy"},
            // As ansible-inventory: an empty group is named as a child but has no entry of its own.
            "all": {"children": ["ungrouped", "web", "empty"]},
            "ungrouped": {"hosts": ["lone"]},
            "web": {"hosts": ["w1"]}
        })
    );
}

#[test]
fn precedence_all_parent_child_host() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "inv.ini",
        "h1 v=host\nh2\n\n[child]\nh1\nh2\n\n[parent:children]\nchild\n\n[all:vars]\nv=all\na=all\n\n[parent:vars]\nv=parent\np=parent\n\n[child:vars]\nv=child\n",
    );
    let inv = Inventory::load(&p).unwrap();
    let h1 = inv.host_vars("h1");
    assert_eq!(h1["v"], json!("host"));
    assert_eq!(h1["a"], json!("all"));
    assert_eq!(h1["p"], json!("parent"));
    assert_eq!(inv.host_vars("h2")["v"], json!("child"));
}

#[test]
fn group_vars_and_host_vars_folders() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "hosts", "[db]\npg[1:2] port=5432\n");
    write(dir.path(), "group_vars/all.yml", "tier: base\n");
    write(dir.path(), "group_vars/db/main.yml", "tier: db\n");
    write(dir.path(), "host_vars/pg2.yaml", "tier: special\n");
    let inv = Inventory::load(&p).unwrap();
    assert_eq!(inv.host_vars("pg1")["tier"], json!("db"));
    assert_eq!(inv.host_vars("pg1")["port"], json!(5432));
    assert_eq!(inv.host_vars("pg2")["tier"], json!("special"));
}

#[test]
fn patterns() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "hosts", "[web]\nweb[1:3]\n[db]\ndb1\nweb2\n");
    let inv = Inventory::load(&p).unwrap();
    assert_eq!(pattern::select(&inv, "all").unwrap().len(), 4);
    assert_eq!(pattern::select(&inv, "web:&db").unwrap(), ["web2"]);
    assert_eq!(pattern::select(&inv, "web:!db").unwrap(), ["web1", "web3"]);
    assert_eq!(pattern::select(&inv, "web*").unwrap(), ["web1", "web2", "web3"]);
    assert_eq!(pattern::select(&inv, "~db\\d").unwrap(), ["db1"]);
    // As ansible-core: a union in the order of its terms, a group's hosts in Group.get_hosts order.
    assert_eq!(pattern::select(&inv, "db1,web3").unwrap(), ["db1", "web3"]);
    assert_eq!(pattern::select(&inv, "db:web").unwrap(), ["db1", "web2", "web1", "web3"]);
    assert_eq!(pattern::select(&inv, "db,web1").unwrap(), ["db1", "web2", "web1"]);
    assert_eq!(pattern::select(&inv, "all").unwrap(), ["web1", "web2", "web3", "db1"]);
}

#[test]
fn bad_inventory_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bad.yml", "all:\n  hostz:\n    a:\n");
    let e = Inventory::load(&p).unwrap_err();
    assert_eq!((e.span.line, e.span.col), (2, 3), "{e}");
    assert!(e.message.contains("unknown key \"hostz\""), "{e}");
    let p = write(dir.path(), "bad.ini", "[web]\nw1 novalue\n");
    let e = Inventory::load(&p).unwrap_err();
    assert_eq!(e.span.line, 2, "{e}");
}
