//! Log events as one JSON object each: on stderr, or handed to a JS logger.

use std::fmt;
use std::io::Write as _;

use linear_oauth_host::{LogLevel, LogSink};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};

/// A JSON log record (one line, no newline) for the JS logger.
pub(crate) type LogTsfn = ThreadsafeFunction<String, Unknown<'static>, String, Status, false, true>;

const TIME_FORMAT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// `{"level", "message", ...fields, "time"}`: one CloudWatch-friendly JSON
/// object. A field that would shadow one of the three is prefixed `field_`.
fn record(level: LogLevel, message: &str, fields: &[(String, String)]) -> String {
    let mut m = serde_json::Map::with_capacity(fields.len() + 3);
    m.insert("level".into(), level.as_str().into());
    m.insert("message".into(), message.into());
    for (k, v) in fields {
        let key = if matches!(k.as_str(), "level" | "message" | "time") { format!("field_{k}") } else { k.clone() };
        m.insert(key, v.as_str().into());
    }
    let now = time::OffsetDateTime::now_utc().format(TIME_FORMAT).unwrap_or_default();
    m.insert("time".into(), now.into());
    serde_json::Value::Object(m).to_string()
}

/// The default sink: one JSON line per event on stderr, written whole.
#[derive(Debug)]
pub(crate) struct StderrSink {
    pub(crate) min: LogLevel,
}

impl LogSink for StderrSink {
    fn log(&self, level: LogLevel, message: &str, fields: &[(String, String)]) {
        if level < self.min {
            return;
        }
        let mut line = record(level, message, fields);
        line.push('\n');
        // Nothing sensible to do if stderr is gone.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Hands each event to the JS logger on the JS thread without waiting for it
/// (events come from libuv worker threads). Weak: never keeps the process alive.
pub(crate) struct JsSink {
    pub(crate) min: LogLevel,
    pub(crate) tsfn: LogTsfn,
}

impl fmt::Debug for JsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsSink").field("min", &self.min).finish_non_exhaustive()
    }
}

impl LogSink for JsSink {
    fn log(&self, level: LogLevel, message: &str, fields: &[(String, String)]) {
        if level < self.min {
            return;
        }
        // NonBlocking on an unbounded queue; fails only while the env shuts down.
        let _ = self.tsfn.call(record(level, message, fields), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_one_json_object_with_level_message_fields_time() {
        let line =
            record(LogLevel::Warn, "hello", &[("workspace_id".into(), "org-1".into()), ("time".into(), "x".into())]);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["level", "message", "workspace_id", "field_time", "time"]);
        assert_eq!(v["level"], "warn");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
