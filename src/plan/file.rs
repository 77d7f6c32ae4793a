//! A plan file: a header line, the plan line, one line per approval, each exactly as recover writes it.

use super::*;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct Header {
    recover_plan: u32,
    digest: String,
}

/// A plan file as read: the plan, its digest, its approvals.
#[derive(Clone, Debug)]
pub struct PlanFile {
    pub plan: Plan,
    pub digest: String,
    pub approvals: Vec<Approval>,
}

fn line_of<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl PlanFile {
    pub fn new(plan: Plan) -> PlanFile {
        let digest = sha256_hex(line_of(&plan).as_bytes());
        PlanFile { plan, digest, approvals: Vec::new() }
    }

    pub fn to_text(&self) -> String {
        let mut s = line_of(&Header { recover_plan: FORMAT, digest: self.digest.clone() });
        s.push('\n');
        s.push_str(&line_of(&self.plan));
        s.push('\n');
        for a in &self.approvals {
            s.push_str(&line_of(a));
            s.push('\n');
        }
        s
    }

    /// Writes the file whole (a temporary file renamed over it), mode 0600.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{}.tmp-{}", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), std::process::id()));
        let res = (|| {
            let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp)?;
            f.write_all(self.to_text().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        res.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write the plan {}: {e}", path.display())
        })
    }

    /// Reads and checks a plan file: every line must be exactly what recover writes for its
    /// content, and every digest must match. `Err` names the line and why.
    pub fn read(path: &Path) -> Result<PlanFile, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read the plan {}: {e}", path.display()))?;
        let p = path.display();
        let text = std::str::from_utf8(&bytes).map_err(|e| format!("{p}: not a recover plan (not UTF-8 text at byte {})", e.valid_up_to()))?;
        if !text.ends_with('\n') {
            return Err(format!("{p}: the plan file was altered: its last line is incomplete"));
        }
        let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
        if lines.len() < 2 {
            return Err(format!("{p}: not a recover plan (expected a header line and a plan line)"));
        }
        fn exact<T: Serialize + for<'de> Deserialize<'de>>(p: &str, n: usize, line: &str, what: &str) -> Result<T, String> {
            let v: T = serde_json::from_str(line).map_err(|e| format!("{p}:{n}:{}: the plan file was altered: its {what} line does not read ({e})", e.column()))?;
            if line_of(&v) != line {
                return Err(format!("{p}:{n}: the plan file was altered: its {what} line is not as recover wrote it"));
            }
            Ok(v)
        }
        let ps = p.to_string();
        let header: Header = exact(&ps, 1, lines[0], "header")?;
        if header.recover_plan != FORMAT {
            return Err(format!("{p}:1: plan format {} (this recover reads format {FORMAT})", header.recover_plan));
        }
        let digest = sha256_hex(lines[1].as_bytes());
        if digest != header.digest {
            return Err(format!("{p}:2: the plan file was altered: the plan's sha256 is {digest}, its header says {}", header.digest));
        }
        let plan: Plan = exact(&ps, 2, lines[1], "plan")?;
        let mut approvals = Vec::new();
        for (i, line) in lines.iter().enumerate().skip(2) {
            let a: Approval = exact(&ps, i + 1, line, "approval")?;
            if a.plan_digest != digest {
                return Err(format!("{p}:{}: the approval by {} is for another plan ({})", i + 1, a.approver, short(&a.plan_digest)));
            }
            if a.computed_digest() != a.digest {
                return Err(format!("{p}:{}: the plan file was altered: the approval by {} does not match its digest", i + 1, a.approver));
            }
            approvals.push(a);
        }
        Ok(PlanFile { plan, digest, approvals })
    }
}
