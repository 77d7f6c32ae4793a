use super::*;

fn parse(s: &str) -> SResult<Node> {
    parse_str(s, Path::new("t.yml"))
}

#[test]
fn quoted_scalars_continue_at_any_indentation_as_in_pyyaml() {
    let n = parse("t:\n  - a: \"{{\n    1 + 2\n  }}\"\n    b: 'x\n  y'\n    c: \"q\\\"\n  r\"\n").unwrap().to_json();
    assert_eq!(n["t"][0]["a"], "{{ 1 + 2 }}");
    assert_eq!(n["t"][0]["b"], "x y");
    assert_eq!(n["t"][0]["c"], "q\" r");
}

#[test]
fn scalars_resolve_like_pyyaml() {
    let n = parse("a: yes\nb: 'yes'\nc: 0644\nd: 1.5\ne: ~\nf: 12\ng: text").unwrap();
    let j = n.to_json();
    assert_eq!(j["a"], Json::Bool(true));
    assert_eq!(j["b"], Json::String("yes".into()));
    assert_eq!(j["c"], Json::from(420));
    assert_eq!(j["d"], Json::from(1.5));
    assert_eq!(j["e"], Json::Null);
    assert_eq!(j["f"], Json::from(12));
    assert_eq!(j["g"], Json::String("text".into()));
}

#[test]
fn spans_point_at_values() {
    let n = parse("top:\n  key: value\n").unwrap();
    let v = n.get("top").unwrap().get("key").unwrap();
    assert_eq!((v.span.line, v.span.col), (2, 8));
}

#[test]
fn syntax_error_has_line_and_column() {
    let e = parse("a: [1, 2\nb: c").unwrap_err();
    assert!(e.span.line >= 1, "{e}");
    assert!(e.to_string().starts_with("t.yml:"), "{e}");
}

#[test]
fn merge_keys() {
    let n = parse("base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  y: 3\n").unwrap();
    let j = n.to_json();
    assert_eq!(j["child"]["x"], Json::from(1));
    assert_eq!(j["child"]["y"], Json::from(3));
}

#[test]
fn billion_laughs_is_refused() {
    let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        doc.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
    }
    let e = parse(&doc).unwrap_err();
    assert!(e.message.contains("alias bomb"), "{e}");
}

#[test]
fn deep_nesting_is_refused() {
    let doc = "[".repeat(1000) + &"]".repeat(1000);
    let e = parse(&doc).unwrap_err();
    assert!(e.message.contains("deeper") || e.message.contains("recursion limit"), "{e}");
}
