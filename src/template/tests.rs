use serde_json::json;

use super::*;

fn ctx(t: &Templates, v: Json) -> Value {
    let Json::Object(m) = v else { panic!() };
    t.context(m.into_iter().collect())
}

#[test]
fn lazy_nested_variables() {
    let t = Templates::new();
    let c = ctx(&t, json!({"vip": "10.0.0.1", "port": 80, "url": "http://{{ vip }}:{{ port }}"}));
    assert_eq!(t.render_str("{{ url }}", &c, &Span::default()).unwrap(), "http://10.0.0.1:80");
}

#[test]
fn data_variables_are_never_rendered() {
    let t = Templates::new();
    let vars: Vars = serde_json::from_value(json!({"answer": {"stdout": "{{ 7*7 }} {% x"}, "tpl": "{{ 7*7 }}"})).unwrap();
    let c = t.context_with_data(vars, ["answer".to_string()].into_iter().collect());
    assert_eq!(t.render_str("{{ answer.stdout }}|{{ tpl }}", &c, &Span::default()).unwrap(), "{{ 7*7 }} {% x|49");
}

#[test]
fn recursive_variables_are_an_error() {
    let t = Templates::new();
    let c = ctx(&t, json!({"a": "{{ b }}", "b": "{{ a }}"}));
    let e = t.render_str("{{ a }}", &c, &Span::default()).unwrap_err();
    assert!(e.message.contains("recursive loop"), "{e}");
}

#[test]
fn undefined_is_strict() {
    let t = Templates::new();
    let c = ctx(&t, json!({}));
    let e = t.render_str("x {{ nope }}", &c, &Span::default()).unwrap_err();
    assert!(e.message.contains("undefined"), "{e}");
    assert_eq!(t.render_str("{{ nope | default('d') }}", &c, &Span::default()).unwrap(), "d");
}

#[test]
fn python_style_output_and_trim_blocks() {
    let t = Templates::new();
    let c = ctx(&t, json!({"flag": true, "items": ["a", "b"]}));
    let out = t.render_str("{% if flag %}\n{{ flag }} {{ items }}\n{% endif %}\n", &c, &Span::default()).unwrap();
    assert_eq!(out, "True ['a', 'b']\n");
}

#[test]
fn trailing_newlines_as_ansible_keeps_them() {
    let t = Templates::new();
    let c = ctx(&t, json!({}));
    let r = |s: &str| t.render_str(s, &c, &Span::default()).unwrap();
    // Measured against ansible-core 2.19's template module.
    assert_eq!(r("{{ 'x\\n' }}\n"), "x\n");
    assert_eq!(r("{{ 'x' }}\n\n"), "x\n\n");
    assert_eq!(r("{{ 'x\\n\\n' }}\n"), "x\n\n");
    assert_eq!(r("a\n\n"), "a\n\n");
    assert_eq!(r("{{ 'x\\n' }}\nend\n"), "x\n\nend\n");
    assert_eq!(r("{{ 'x\\n' }}"), "x\n");
}

#[test]
fn shell_mode_quotes_values() {
    let t = Templates::new();
    let c = ctx(&t, json!({"x": "; rm -rf /", "dir": "/srv/a b"}));
    assert_eq!(t.render_shell("echo {{ x }}", &c, &Span::default()).unwrap(), "echo '; rm -rf /'");
    assert_eq!(t.render_shell("ls {{ dir }}/*.prom", &c, &Span::default()).unwrap(), "ls '/srv/a b'/*.prom");
    assert_eq!(t.render_shell("{{ x | quote }}", &c, &Span::default()).unwrap(), "'; rm -rf /'");
    // join quotes each item and keeps the separator.
    let c = ctx(&t, json!({"paths": ["/a b", "/c", "$(id)"]}));
    assert_eq!(t.render_shell("ls {{ paths | join(' ') }}", &c, &Span::default()).unwrap(), "ls '/a b' /c '$(id)'");
    assert_eq!(t.render_str("{{ paths | join(',') }}", &c, &Span::default()).unwrap(), "/a b,/c,$(id)");
}

#[test]
fn native_types_for_single_expressions() {
    let t = Templates::new();
    let c = ctx(&t, json!({"items": [1, 2]}));
    assert_eq!(t.render_json(&json!("{{ items }}"), &c).unwrap(), json!([1, 2]));
    assert_eq!(t.render_json(&json!("n={{ items | length }}"), &c).unwrap(), json!("n=2"));
    // Text around the expression (a newline too) makes it a string.
    assert_eq!(t.render_json(&json!("{{ items | length }}\n"), &c).unwrap(), json!("2\n"));
}

#[test]
fn ansible_filters() {
    let t = Templates::new();
    let c = ctx(&t, json!({"d": {"a": 1}, "e": {"b": 2}}));
    let r = |s: &str| t.render_str(s, &c, &Span::default()).unwrap();
    assert_eq!(r("{{ d | combine(e) | to_json }}"), r#"{"a": 1, "b": 2}"#);
    assert_eq!(r("{{ 'yes' | bool }}"), "True");
    assert_eq!(r("{{ 'abc-123' | regex_replace('(\\\\w+)-(\\\\d+)', '\\\\2_\\\\1') }}"), "123_abc");
    assert_eq!(r("{{ '/a/b/c.conf' | basename }} {{ '/a/b/c.conf' | dirname }}"), "c.conf /a/b");
    assert_eq!(r("{{ [[1, [2]], 3] | flatten }}"), "[1, 2, 3]");
    assert_eq!(r("{{ d | dict2items }}"), "[{'key': 'a', 'value': 1}]");
    assert_eq!(r("{{ true | ternary('y', 'n') }}"), "y");
    assert_eq!(r("{{ 'hi' | b64encode }}"), "aGk=");
    assert_eq!(r("{{ '200%' | systemd_quota }} {{ '2G' | systemd_bytes }} {{ '512M' | systemd_bytes }}"), "2s 2147483648 536870912");
}
