//! Hostile and broken input never makes recover panic or hang: property tests
//! over the YAML loader, both inventory formats, host patterns, the playbook
//! loader and the template renderer (a fixed number of cases, run by CI).

use std::path::Path;

use proptest::prelude::*;
use recover::inventory::{pattern, Inventory};
use recover::template::Templates;

/// Text made mostly of the characters YAML, INI, patterns and Jinja2 care about.
fn syntaxy() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r#"[a-z0-9_\-:\[\]{}%#"' \n\t|>&*!.,=~@&()]{0,240}"#).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("RECOVER_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(400), .. ProptestConfig::default() })]

    #[test]
    fn yaml_never_panics(text in syntaxy()) {
        let _ = recover::yaml::parse_str(&text, Path::new("fuzz.yml"));
    }

    #[test]
    fn inventories_never_panic(text in syntaxy(), ini in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(if ini { "hosts.ini" } else { "hosts.yml" });
        std::fs::write(&p, &text).unwrap();
        if let Ok(inv) = Inventory::load(&p) {
            let _ = inv.to_list_json(&inv.hosts.keys().cloned().collect::<Vec<_>>());
            let _ = inv.graph("all", false);
        }
    }

    #[test]
    fn patterns_never_panic(pat in syntaxy()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts");
        std::fs::write(&p, "[web]\nweb[1:3]\n[db]\ndb1\n[all:children]\nweb\n").unwrap();
        let inv = Inventory::load(&p).unwrap();
        let _ = pattern::select(&inv, &pat);
    }

    #[test]
    fn playbooks_never_panic(body in syntaxy()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pb.yml");
        std::fs::write(&p, format!("- hosts: all\n  gather_facts: false\n  tasks:\n{}", body.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n"))).unwrap();
        let _ = recover::playbook::load(&p, dir.path(), &recover::modules::BUILTINS);
        std::fs::write(&p, &body).unwrap();
        let _ = recover::playbook::load(&p, dir.path(), &recover::modules::BUILTINS);
    }

    #[test]
    fn templates_never_panic_or_hang(src in syntaxy()) {
        let t = Templates::new();
        let ctx = t.context([("x".to_string(), serde_json::json!([1, 2, {"a": "b"}]))].into_iter().collect());
        let _ = t.render_str(&src, &ctx, &Default::default());
        let _ = t.render_shell(&src, &ctx, &Default::default());
        let _ = t.undeclared(&src);
    }
}

#[test]
fn a_template_loop_of_a_trillion_is_stopped_by_its_fuel() {
    let t = Templates::new();
    let ctx = t.context(Default::default());
    let started = std::time::Instant::now();
    let e = t.render_str("{% for i in range(1000000000000) %}{{ i }}{% endfor %}", &ctx, &Default::default()).unwrap_err();
    assert!(e.message.to_lowercase().contains("fuel") || e.message.contains("range"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
