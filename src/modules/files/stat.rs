//! `stat` and `slurp`: read-only; they run in dry-run too.

use async_trait::async_trait;
use base64::Engine as _;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `stat`: what a path is: whether it exists, its kind, size, mode, owner, times, link target,
/// checksum and MIME type.
///
/// Returns: `stat` (`exists`, `isdir`, `isreg`, `islnk`, `size`, `mode`, `pw_name`, `gr_name`,
/// `uid`, `gid`, `mtime`, `checksum`, `mimetype`, ...).
///
/// Check mode: runs as in a real run (read-only).
#[derive(Documented)]
pub struct Stat;
/// `slurp`: a file's content from the host, base64-encoded.
///
/// Returns: `content` (base64), `encoding` (`base64`), `source`.
///
/// Check mode: runs as in a real run (read-only).
#[derive(Documented)]
pub struct Slurp;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatArgs {
    #[serde(alias = "dest", alias = "name")]
    path: String,
    #[serde(default, deserialize_with = "de::bool_loose")]
    get_checksum: Option<bool>,
    #[serde(alias = "checksum", alias = "checksum_algo")]
    checksum_algorithm: Option<String>,
    #[serde(default, alias = "mime", alias = "mime_type", alias = "mime-type", deserialize_with = "de::bool_loose")]
    get_mime: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    follow: Option<bool>,
    #[serde(default, alias = "attr", alias = "attributes", deserialize_with = "de::bool_loose")]
    get_attributes: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    get_md5: Option<bool>,
}

/// A digest of `data` by its Ansible name (`sha1`, `sha256`, ... `md5`).
pub fn digest(algo: &str, data: &[u8]) -> Result<String, String> {
    use sha2::Digest as _;
    Ok(match algo {
        "sha1" => format!("{:x}", sha1::Sha1::digest(data)),
        "sha224" => format!("{:x}", sha2::Sha224::digest(data)),
        "sha256" => format!("{:x}", sha2::Sha256::digest(data)),
        "sha384" => format!("{:x}", sha2::Sha384::digest(data)),
        "sha512" => format!("{:x}", sha2::Sha512::digest(data)),
        "md5" => format!("{:x}", md5::Md5::digest(data)),
        other => return Err(format!("checksum algorithm {other} is not supported (md5, sha1, sha224, sha256, sha384, sha512)")),
    })
}

/// The fields of ansible-core's stat, in one round trip: `find -printf` of the path, the
/// access tests as the task's user, the link's target, the digest (`<algo>sum`) and the MIME
/// type (`file`, "unknown" where it is not installed).
fn stat_script(path: &str, follow: bool, algo: Option<&str>, mime: bool) -> String {
    let p = quote::quote(path);
    let l = if follow { "-L " } else { "" };
    let mut s = format!("find {l}{p} -maxdepth 0 -printf '%y\\t%Y\\t%m\\t%s\\t%U\\t%G\\t%u\\t%g\\t%i\\t%D\\t%n\\t%A@\\t%T@\\t%C@\\t%b\\t%l\\n' 2>/dev/null || {{ echo ABSENT; exit 0; }}; ");
    s.push_str(&format!("for t in r w x; do if [ -$t {p} ]; then printf 1; else printf 0; fi; done; echo; {{ [ -L {p} ] && realpath -- {p} 2>/dev/null; }} || echo; "));
    if let Some(a) = algo {
        s.push_str(&format!("if [ -f {p} ] && [ -r {p} ]; then {a}sum -- {p} 2>/dev/null | cut -d' ' -f1; else echo; fi; "));
    } else {
        s.push_str("echo; ");
    }
    if mime {
        // One `file` (as ansible-core's `file -i`): its magic database costs more than the rest.
        s.push_str(&format!("if command -v file >/dev/null 2>&1; then file -b{} --mime -- {p}; else echo unknown; fi", if follow { "L" } else { "" }));
    }
    s
}

#[async_trait]
impl Module for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("path", Kind::Str).aliases(&["dest", "name"]).doc("The path to describe."),
            opt("get_checksum", Kind::Bool).default("true").doc("Return the checksum of a file."),
            opt("checksum_algorithm", Kind::Str).aliases(&["checksum", "checksum_algo"]).default("sha1").doc("The algorithm of the checksum."),
            opt("get_mime", Kind::Bool).aliases(&["mime", "mime_type", "mime-type"]).default("true").doc("Return the MIME type and encoding."),
            opt("follow", Kind::Bool).default("false").doc("Describe a link's target, not the link."),
            opt("get_attributes", Kind::Bool).aliases(&["attr", "attributes"]).default("true").doc("Return the file attributes (`lsattr`)."),
            opt("get_md5", Kind::Bool).doc("Refused by name (removed from ansible-core)."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: StatArgs = typed("stat", args)?;
        let _ = (a.get_attributes, a.get_md5);
        let algo = a.checksum_algorithm.clone().unwrap_or_else(|| "sha1".into());
        if !matches!(algo.as_str(), "md5" | "sha1" | "sha224" | "sha256" | "sha384" | "sha512") {
            return Err(StepError::failed(format!("stat: value of checksum_algorithm must be one of: md5, sha1, sha224, sha256, sha384, sha512, got: {algo}")));
        }
        let want_sum = a.get_checksum.unwrap_or(true);
        let mime = a.get_mime.unwrap_or(true);
        let out = ctx.run(Cmd::shell(stat_script(&a.path, a.follow.unwrap_or(false), want_sum.then_some(algo.as_str()), mime))).await?;
        let text = out.stdout_str();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("ABSENT");
        if first == "ABSENT" {
            return Ok(Plan::done(json!({"stat": {"exists": false}})));
        }
        let f: Vec<&str> = first.splitn(16, '\t').collect();
        if f.len() < 16 {
            return Err(StepError::failed(format!("host {}: stat of {}: unreadable output {first:?}", ctx.host, a.path)));
        }
        let kind = f[0].chars().next().unwrap_or('?');
        let mode = u32::from_str_radix(f[2], 8).unwrap_or(0) & 0o7777;
        let bit = |b: u32| mode & b != 0;
        let num = |s: &str| s.parse::<u64>().unwrap_or(0);
        let flt = |s: &str| s.parse::<f64>().unwrap_or(0.0);
        let access = lines.next().unwrap_or("000").to_string();
        let real = lines.next().unwrap_or("").to_string();
        let sum = lines.next().unwrap_or("").to_string();
        let mut st = json!({
            "exists": true, "path": a.path, "mode": format!("{mode:04o}"), "isdir": kind == 'd', "ischr": kind == 'c', "isblk": kind == 'b',
            "isreg": kind == 'f', "isfifo": kind == 'p', "islnk": kind == 'l', "issock": kind == 's', "uid": num(f[4]), "gid": num(f[5]),
            "size": num(f[3]), "inode": num(f[8]), "dev": num(f[9]), "nlink": num(f[10]), "atime": flt(f[11]), "mtime": flt(f[12]), "ctime": flt(f[13]),
            "blocks": num(f[14]), "block_size": 4096, "pw_name": f[6], "gr_name": f[7],
            "wusr": bit(0o200), "rusr": bit(0o400), "xusr": bit(0o100), "wgrp": bit(0o020), "rgrp": bit(0o040), "xgrp": bit(0o010),
            "woth": bit(0o002), "roth": bit(0o004), "xoth": bit(0o001), "isuid": bit(0o4000), "isgid": bit(0o2000),
            "readable": access.as_bytes().first() == Some(&b'1'), "writeable": access.as_bytes().get(1) == Some(&b'1'), "executable": access.as_bytes().get(2) == Some(&b'1'),
        });
        if kind == 'l' {
            st["lnk_source"] = json!(real);
            st["lnk_target"] = json!(f[15]);
        }
        if want_sum && !sum.is_empty() {
            st["checksum"] = json!(sum);
        }
        if mime {
            // "text/plain; charset=us-ascii"
            let line = lines.next().unwrap_or("unknown");
            let (ty, rest) = line.split_once(';').unwrap_or((line, ""));
            let charset = rest.trim().strip_prefix("charset=").unwrap_or("unknown");
            st["mimetype"] = json!(ty.trim());
            st["charset"] = json!(charset.trim());
        }
        Ok(Plan::done(json!({ "stat": st })))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlurpArgs {
    #[serde(alias = "path")]
    src: String,
}

#[async_trait]
impl Module for Slurp {
    fn name(&self) -> &'static str {
        "slurp"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("src", Kind::Str).aliases(&["path"]).doc("The file on the host to read."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: SlurpArgs = typed("slurp", args)?;
        let bytes = ctx.read(&a.src).await?.ok_or_else(|| StepError::failed(format!("host {}: file not found: {}", ctx.host, a.src)))?;
        Ok(Plan::done(json!({
            "content": base64::engine::general_purpose::STANDARD.encode(&bytes),
            "encoding": "base64",
            "source": a.src,
        })))
    }
}
