//! The CLI's global option flags, one per entry of the host's options table
//! (`linear_oauth_host::SETTINGS`): `--store`, `--http-timeout-s`, ... Each
//! also reads its `LINEAR_OAUTH_*` variable (through `Options::from_env`);
//! a flag given on the command line wins.

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use linear_oauth_host::{Options, Setting, SettingKind, SETTINGS};

/// Flags given on the command line, as typed.
#[derive(Debug, Clone, Default)]
pub struct SettingFlags {
    given: Vec<(&'static Setting, String)>,
}

impl SettingFlags {
    /// The environment's options with the flags laid over them.
    pub fn options(&self) -> Result<Options, linear_oauth_host::Error> {
        let mut o = Options::from_env()?;
        for (setting, raw) in &self.given {
            setting.apply(&mut o, &format!("--{}", setting.cli_flag()), raw.as_str().into())?;
        }
        Ok(o)
    }

    /// The value given for `field` on the command line or in its variable.
    pub fn get(&self, field: &str) -> Option<String> {
        let from_flag = self.given.iter().find(|(s, _)| s.field == field).map(|(_, v)| v.clone());
        let setting = SETTINGS.iter().find(|s| s.field == field)?;
        from_flag.or_else(|| std::env::var(setting.env_var?).ok().filter(|v| !v.is_empty()))
    }
}

fn id(s: &Setting) -> &'static str {
    s.field
}

impl Args for SettingFlags {
    fn augment_args(cmd: Command) -> Command {
        SETTINGS.iter().fold(cmd, |cmd, s| {
            let unit = match s.kind {
                SettingKind::Text { .. } => String::new(),
                kind => format!(" ({})", kind.name()),
            };
            let default = s.default_text().map(|d| format!(" [default: {d}]")).unwrap_or_default();
            let mut arg = Arg::new(id(s))
                .long(s.cli_flag())
                .global(true)
                .value_name(if matches!(s.kind, SettingKind::Text { .. }) { "VALUE" } else { "N" })
                .help(format!("{}{unit}{default}", capitalized(s.doc)))
                .help_heading("Store and timing options (each also from its environment variable)");
            if let Some(var) = s.env_var {
                arg = arg.env(var);
            }
            cmd.arg(arg)
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for SettingFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let given = SETTINGS
            .iter()
            // Values from the environment are `Options::from_env`'s to read.
            .filter(|s| m.value_source(id(s)) == Some(ValueSource::CommandLine))
            .filter_map(|s| m.get_one::<String>(id(s)).map(|v| (s, v.clone())))
            .collect();
        Ok(Self { given })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
