//! The globals ansible-core adds to Jinja2: `now()` (a Python datetime) and `dict()`.

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

use super::text::err;

/// Ansible's `now(utc=False, fmt=None)`: the controller's time as a Python datetime (`.year`,
/// `.strftime(fmt)`, `.isoformat()`, `.timestamp()`), or, with `fmt`, that formatted text.
pub(super) fn now_fn(kw: Kwargs) -> Result<Value, Error> {
    let utc = kw.get::<Option<bool>>("utc")?.unwrap_or(false);
    let fmt = kw.get::<Option<String>>("fmt")?;
    kw.assert_all_used()?;
    let t = if utc { chrono::Utc::now().naive_utc() } else { chrono::Local::now().naive_local() };
    match fmt {
        Some(f) => Ok(Value::from(PyDateTime(t).strftime(&f))),
        None => Ok(Value::from_object(PyDateTime(t))),
    }
}

/// A Python `datetime` as far as templates use one.
#[derive(Debug)]
pub(super) struct PyDateTime(chrono::NaiveDateTime);

impl PyDateTime {
    fn strftime(&self, f: &str) -> String {
        // Python's %f is microseconds (chrono's, nanoseconds).
        let f = f.replace("%f", "%6f");
        let mut out = String::new();
        use std::fmt::Write as _;
        if write!(out, "{}", self.0.format(&f)).is_err() {
            return f;
        }
        out
    }
    fn text(&self) -> String {
        if self.0.and_utc().timestamp_subsec_micros() == 0 { self.strftime("%Y-%m-%d %H:%M:%S") } else { self.strftime("%Y-%m-%d %H:%M:%S.%f") }
    }
}

impl minijinja::value::Object for PyDateTime {
    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        use chrono::{Datelike, Timelike};
        let t = &self.0;
        Some(Value::from(match key.as_str()? {
            "year" => t.year() as i64,
            "month" => t.month() as i64,
            "day" => t.day() as i64,
            "hour" => t.hour() as i64,
            "minute" => t.minute() as i64,
            "second" => t.second() as i64,
            "microsecond" => t.and_utc().timestamp_subsec_micros() as i64,
            _ => return None,
        }))
    }
    fn call_method(self: &std::sync::Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        use chrono::Datelike;
        match method {
            "strftime" => Ok(Value::from(self.strftime(args.first().and_then(Value::as_str).ok_or_else(|| err("strftime() takes a format"))?))),
            "isoformat" => Ok(Value::from(self.strftime("%Y-%m-%dT%H:%M:%S%.6f").trim_end_matches(".000000").to_string())),
            "timestamp" => Ok(Value::from(self.0.and_utc().timestamp_micros() as f64 / 1e6)),
            "weekday" => Ok(Value::from(self.0.weekday().num_days_from_monday() as i64)),
            "isoweekday" => Ok(Value::from(self.0.weekday().number_from_monday() as i64)),
            "date" => Ok(Value::from(self.strftime("%Y-%m-%d"))),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
    fn render(self: &std::sync::Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// Python's `dict()`: from a mapping or a sequence of key, value pairs (`dict(keys | zip(values))`),
/// then keyword arguments on top.
pub(super) fn dict_fn(args: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let mut out: indexmap::IndexMap<Value, Value> = indexmap::IndexMap::new();
    if args.len() > 1 {
        return Err(err(format!("dict expected at most 1 argument, got {}", args.len())));
    }
    if let Some(src) = args.first() {
        if src.kind() == ValueKind::Map {
            for k in src.try_iter()? {
                let v = src.get_item(&k)?;
                out.insert(k, v);
            }
        } else {
            for (i, pair) in src.try_iter()?.enumerate() {
                let items: Vec<Value> = pair.try_iter().map_err(|_| err(format!("cannot convert dictionary update sequence element #{i} to a sequence")))?.collect();
                if items.len() != 2 {
                    return Err(err(format!("dictionary update sequence element #{i} has length {}; 2 is required", items.len())));
                }
                out.insert(items[0].clone(), items[1].clone());
            }
        }
    }
    for k in kw.args() {
        out.insert(Value::from(k), kw.get::<Value>(k)?);
    }
    kw.assert_all_used()?;
    Ok(Value::from_object(out))
}
