//! The options object `index.js` passes, through the host's table.

use linear_oauth_host::{Error as HostError, LogLevel, Options, Setting, SettingKind, SettingValue, SETTINGS};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::HostResult;

/// What `index.js` passes after checking types (`ResolverOptions` without the
/// logger); every field is optional and falls back to the host's default (or,
/// for `fromEnv`, the environment).
#[derive(Debug, Default)]
pub(crate) struct NativeOptions {
    /// Options of the host's table, under their Node names.
    given: Vec<(&'static Setting, SettingValue)>,
    log_level: Option<String>,
}

impl NativeOptions {
    pub(crate) fn read(o: Option<Object<'_>>) -> Result<Self> {
        let Some(o) = o else { return Ok(Self::default()) };
        let mut out = Self { log_level: o.get("logLevel")?, ..Self::default() };
        for setting in &SETTINGS {
            let name = setting.node_name();
            let value = match setting.kind {
                SettingKind::Text { .. } => o.get::<String>(&name)?.map(SettingValue::Text),
                SettingKind::Flag => o.get::<bool>(&name)?.map(SettingValue::Bool),
                _ => o.get::<f64>(&name)?.map(SettingValue::Number),
            };
            out.given.extend(value.map(|v| (setting, v)));
        }
        Ok(out)
    }

    /// Lays the options over `base`, each checked by the host under its Node
    /// name; returns the minimum log level too.
    pub(crate) fn apply(self, mut base: Options) -> HostResult<(Options, LogLevel)> {
        for (setting, v) in self.given {
            setting.apply(&mut base, &setting.node_name(), v)?;
        }
        let level = match self.log_level.as_deref() {
            None => LogLevel::Info,
            Some(s) => s.parse().map_err(|_| {
                HostError::InvalidInput(format!("logLevel must be trace, debug, info, warn or error, got {s:?}"))
            })?,
        };
        Ok((base, level))
    }
}

/// The host's options table as Node spells it (`SETTINGS` in index.js):
/// `[name, kind, default]`, the default as text (`null`: unset).
#[napi(skip_typescript)]
pub fn settings() -> Vec<(String, &'static str, Option<String>)> {
    SETTINGS.iter().map(|s| (s.node_name(), s.kind.name(), s.default_text())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn options_are_validated() {
        let find = |n: &str| Setting::find(n).unwrap();
        let given = |pairs: Vec<(&str, SettingValue)>| NativeOptions {
            given: pairs.into_iter().map(|(n, v)| (find(n), v)).collect(),
            ..Default::default()
        };
        let bad = given(vec![("cacheTtlSeconds", (-1.0).into())]);
        assert!(matches!(bad.apply(Options::default()), Err(HostError::InvalidInput(_))));
        let e = given(vec![("httpTimeoutSeconds", 0.0.into())]).apply(Options::default()).unwrap_err();
        assert!(e.to_string().contains("httpTimeoutSeconds"), "{e}");
        let bad = NativeOptions { log_level: Some("loud".into()), ..Default::default() };
        assert!(matches!(bad.apply(Options::default()), Err(HostError::InvalidInput(_))));
        let ok = given(vec![("refreshThresholdSeconds", 0.5.into()), ("store", "memory:".into())]);
        let (o, level) = ok.apply(Options::default()).unwrap();
        assert_eq!(
            (o.refresh_threshold, o.store.as_str(), level),
            (Duration::from_millis(500), "memory:", LogLevel::Info)
        );
    }
}
