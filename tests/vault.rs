//! Ansible Vault against `ansible-vault` itself (issue 15): files each tool encrypts are read
//! by the other; an encrypted group_vars file, an inline `!vault` value and an encrypted
//! template reach a real host through a play; a wrong password is a load error naming the
//! file, before any host is touched; decrypted values never show in output or the run log.

mod common;

use std::process::Command;

use common::*;

fn ansible_vault(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new("ansible-vault").args(args).current_dir(dir).env("ANSIBLE_NOCOLOR", "1").output().expect("ansible-vault (pip install ansible-core)")
}

#[test]
fn files_each_tool_encrypts_are_read_by_the_other() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("pass"), "correct horse\n").unwrap();
    std::fs::write(d.join("prodpass"), "prod-pw\n").unwrap();
    let plain = "db_password: hunter2\nport: 5432\nnote: \"ünïcode ok\"\n";
    for (name, by_recover) in [("r.yml", true), ("a.yml", false)] {
        std::fs::write(d.join(name), plain).unwrap();
        if by_recover {
            let r = Recover::new().args(["vault", "encrypt", d.join(name).to_str().unwrap(), "--vault-password-file", d.join("pass").to_str().unwrap()]).run();
            assert_eq!(r.code, 0, "{}", r.stderr);
            let v = ansible_vault(&["view", name, "--vault-password-file", "pass"], d);
            assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
            assert_eq!(String::from_utf8_lossy(&v.stdout), plain);
        } else {
            assert!(ansible_vault(&["encrypt", name, "--vault-password-file", "pass"], d).status.success());
            let r = Recover::new().args(["vault", "view", d.join(name).to_str().unwrap(), "--vault-password-file", d.join("pass").to_str().unwrap()]).run();
            assert_eq!(r.code, 0, "{}", r.stderr);
            assert_eq!(r.stdout, plain);
        }
        assert!(std::fs::read_to_string(d.join(name)).unwrap().starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
    }
    // Format 1.2 with a vault id, both ways; an executable password source.
    let script = write(d, "pw.sh", "#!/bin/sh\necho prod-pw\n");
    Command::new("chmod").args(["+x", script.to_str().unwrap()]).status().unwrap();
    let r = Recover::new().args(["vault", "encrypt_string", "s3cret-value", "--name", "tok", "--vault-id", &format!("prod@{}", script.display())]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("$ANSIBLE_VAULT;1.2;AES256;prod"), "{}", r.stdout);
    write(d, "inline.yml", &r.stdout);
    let dbg = Command::new("ansible").args(["localhost", "-c", "local", "-m", "debug", "-a", "var=tok", "-e", "@inline.yml", "--vault-id", "prod@prodpass"]).current_dir(d).output().unwrap();
    assert!(String::from_utf8_lossy(&dbg.stdout).contains("\"tok\": \"s3cret-value\""), "{}{}", String::from_utf8_lossy(&dbg.stdout), String::from_utf8_lossy(&dbg.stderr));
    // Rekey, then only the new password opens it.
    std::fs::write(d.join("new"), "brand-new\n").unwrap();
    let r = Recover::new().args(["vault", "rekey", d.join("a.yml").to_str().unwrap(), "--vault-password-file", d.join("pass").to_str().unwrap(), "--new-vault-password-file", d.join("new").to_str().unwrap()]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(ansible_vault(&["view", "a.yml", "--vault-password-file", "new"], d).status.success());
    assert!(!ansible_vault(&["view", "a.yml", "--vault-password-file", "pass"], d).status.success());
}

#[test]
fn vaulted_vars_and_templates_reach_the_host_and_never_show() {
    lab();
    let scratch = host_scratch("188", "vault");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let inv = lab_inventory_dir(d);
    let inv_dir = inv.parent().unwrap();
    std::fs::write(d.join("pass"), "vault-pw\n").unwrap();
    // group_vars/data.yml encrypted by ansible-vault; an inline !vault value in the play; a template encrypted too.
    write(inv_dir, "group_vars/data.yml", "db_password: GROUPVAR-S3CRET\n");
    assert!(ansible_vault(&["encrypt", "inv/group_vars/data.yml", "--vault-password-file", "pass"], d).status.success());
    let s = ansible_vault(&["encrypt_string", "INLINE-S3CRET", "--vault-password-file", "pass", "--name", "api_token"], d);
    let inline = String::from_utf8_lossy(&s.stdout).lines().map(|l| format!("    {l}\n")).collect::<String>();
    write(d, "templates/conf.j2", "pw={{ db_password }}\ntoken={{ api_token }}\n");
    assert!(ansible_vault(&["encrypt", "templates/conf.j2", "--vault-password-file", "pass"], d).status.success());
    let pb = write(d, "v.yml", &format!("- hosts: data\n  gather_facts: false\n  vars:\n{inline}  tasks:\n    - template: {{src: conf.j2, dest: \"{}/conf\"}}\n", scratch.display()));
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--yes", "--diff", "--vault-password-file", d.join("pass").to_str().unwrap()]);
    let run = r.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("conf")).unwrap(), "pw=GROUPVAR-S3CRET\ntoken=INLINE-S3CRET\n");
    let log: String = r.run_log().iter().map(|e| e.to_string()).collect();
    for secret in ["GROUPVAR-S3CRET", "INLINE-S3CRET"] {
        assert!(!run.stdout.contains(secret), "{secret} shown: {}", run.stdout);
        assert!(!log.contains(secret), "{secret} in the run log");
    }
    // A wrong password: a load error naming the file, nothing contacted.
    std::fs::write(d.join("wrong"), "nope\n").unwrap();
    std::fs::remove_file(scratch.join("conf")).unwrap();
    let bad = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--yes", "--vault-password-file", d.join("wrong").to_str().unwrap()]).run();
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("wrong password"), "{}", bad.stderr);
    assert!(bad.stderr.contains("group_vars/data.yml") || bad.stderr.contains("v.yml"), "{}", bad.stderr);
    assert!(!scratch.join("conf").exists());
    // No password at all: says how to give one.
    let none = Recover::new().args(["play", pb.to_str().unwrap(), "-i", inv.to_str().unwrap(), "--yes"]).run();
    assert_eq!(none.code, 1, "{}{}", none.stdout, none.stderr);
    assert!(none.stderr.contains("--vault-password-file"), "{}", none.stderr);
}
