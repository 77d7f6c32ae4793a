use super::*;
use std::path::Path;

fn load_text(text: &str) -> crate::error::SResult<Playbook> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pb.yml");
    std::fs::write(&p, text).unwrap();
    load(&p, Path::new("."), &crate::modules::BUILTINS)
}

#[test]
fn aliases_satisfy_required_arguments() {
    let pb = load_text("- hosts: all\n  tasks:\n    - file: dest=/tmp/x state=directory\n    - file: {name: /tmp/y, state: touch}\n    - slurp: {path: /etc/hostname}\n").unwrap();
    assert_eq!(pb.plays[0].tasks.len(), 3);
    let e = load_text("- hosts: all\n  tasks:\n    - file: {state: touch}\n").unwrap_err();
    assert!(e.message.contains("needs argument 'path'"), "{e}");
}

#[test]
fn free_form_and_keywords() {
    let pb = load_text("- hosts: all\n  tasks:\n    - name: t\n      command: echo hi\n      register: out\n      when: x is defined\n      loop: [1, 2]\n      become: yes\n").unwrap();
    let t = pb.plays[0].all_tasks()[0];
    assert_eq!(t.args["_raw_params"], "echo hi");
    assert_eq!(t.register.as_deref(), Some("out"));
    assert_eq!(t.r#become.as_ref().and_then(super::Flag::fixed), Some(true));
    assert_eq!(t.when[0].expr, "x is defined");
    assert!(t.loop_items.is_some());
}

#[test]
fn notify_needs_a_handler() {
    let e = load_text("- hosts: all\n  tasks:\n    - command: x\n      notify: nope\n").unwrap_err();
    assert!(e.message.contains("no handler"), "{e}");
}

#[test]
fn a_when_is_defined_guard_lets_the_task_use_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pb.yml");
    std::fs::write(&p, "- hosts: all\n  tasks:\n    - command: echo {{ maybe }}\n      when: maybe is defined\n    - command: echo {{ other }}\n").unwrap();
    let pb = load(&p, Path::new("."), &crate::modules::BUILTINS).unwrap();
    let templates = crate::template::Templates::new();
    let e = check_undefined(&pb.plays[0], pb.catalog, &Default::default(), &templates, Path::new("."), dir.path()).unwrap_err();
    assert!(e.message.contains("'other'"), "{e}");
}

#[test]
fn command_lines_give_up_ansible_cores_options_only() {
    let t = |s: &str| super::kv::command_params_for_test(s);
    assert_eq!(t("pwd chdir=/tmp"), ("pwd".to_string(), vec![("chdir".to_string(), "/tmp".to_string())]));
    assert_eq!(t("echo x=1 y=2"), ("echo x=1 y=2".to_string(), vec![]));
    assert_eq!(t("echo \"a=b\" chdir=/ executable=/bin/bash").0, "echo \"a=b\"");
    assert_eq!(t("creates=/x make all").0, "make all");
    assert_eq!(t("echo {{ 'a b' }} creates='/p q'").1, vec![("creates".to_string(), "/p q".to_string())]);
    assert_eq!(t("cd /x\nmake chdir=/y\nls").0, "cd /x\nmake\nls");
}
