//! The one log subscriber, installed by `main` for every command: every crate logs through
//! `tracing`, and this writes the lines on stderr, as text (`time level msg key="value" ...`) or
//! one JSON object per line (`{"time","level","msg",...fields}`).
//!
//! `--log-level` sets tally's own level (its crates); other crates (the kube client, hyper) log
//! at warn and above. `RUST_LOG` (`warn,tally_engine=debug`), when set, replaces both.

use std::fmt::Write as _;
use std::io::Write as _;

use clap::ValueEnum;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time level msg key="value" ...`
    Text,
    /// One JSON object per line.
    Json,
}

/// The lowest level written for tally's own crates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// The default: what an operator needs (rounds that changed something, pushes, rejections).
    Info,
    /// Also rounds with nothing to do, each repo load and render.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    fn filter(self) -> LevelFilter {
        match self {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
}

/// tally's crates, whose level `--log-level` sets.
const OWN_CRATES: [&str; 4] = ["tally", "tally_engine", "tally_layout", "tally_validator"];

/// Installs the subscriber for the process. `RUST_LOG`, when set, must parse.
pub fn install(format: LogFormat, level: LogLevel) -> Result<(), String> {
    let targets = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => directives
            .parse::<Targets>()
            .map_err(|e| format!("RUST_LOG={directives:?}: {e}"))?,
        _ => OWN_CRATES
            .iter()
            .fold(Targets::new().with_default(LevelFilter::WARN), |t, c| {
                t.with_target(*c, level.filter())
            }),
    };
    tracing_subscriber::registry()
        .with(Lines { format }.with_filter(targets))
        .try_init()
        .map_err(|e| format!("installing the logger: {e}"))
}

/// The layer that writes each event as one line on stderr.
struct Lines {
    format: LogFormat,
}

impl<S: Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let line = line(self.format, event);
        // A closed stderr loses the line; nothing better can be done with it.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// The event as one line, newline included.
fn line(format: LogFormat, event: &Event<'_>) -> String {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let time = tally_engine::inventory::now_rfc3339();
    let level = level_name(*event.metadata().level());
    match format {
        LogFormat::Json => {
            let mut object = Map::new();
            object.insert("time".into(), time.into());
            object.insert("level".into(), level.into());
            object.insert("msg".into(), fields.message.into());
            for (key, value) in fields.values {
                object.entry(key).or_insert(value);
            }
            format!("{}\n", Value::Object(object))
        }
        LogFormat::Text => {
            let mut text = format!("{time} {level:5} {}", fields.message);
            for (key, value) in fields.values {
                let _ = match value {
                    Value::String(s) => write!(text, " {key}={s:?}"),
                    other => write!(text, " {key}={other}"),
                };
            }
            text.push('\n');
            text
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// An event's message and its other fields, in the order given.
#[derive(Default)]
struct Fields {
    message: String,
    values: Vec<(String, Value)>,
}

impl Fields {
    fn add(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.values.push((field.name().to_owned(), value));
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields arrive here as their Display text, the message as its formatted text.
        self.add(field, Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, Value::String(value.to_owned()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.add(field, Value::Bool(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.add(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.add(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.add(field, Value::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A layer that keeps lines instead of writing them, to see what `line` makes of events.
    struct Kept(LogFormat, Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Kept {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            if let Ok(mut lines) = self.1.lock() {
                lines.push(line(self.0, event));
            }
        }
    }

    fn logged(format: LogFormat, emit: impl FnOnce()) -> Vec<String> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Kept(format, Arc::clone(&lines)));
        tracing::subscriber::with_default(subscriber, emit);
        lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    #[test]
    fn json_lines_carry_time_level_message_and_fields() {
        let lines = logged(LogFormat::Json, || {
            tracing::warn!(peer = %"127.0.0.1:4", attempts = 3_u64, ok = false, "rejected {}", "x");
        });
        let [line] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "rejected x");
        assert_eq!(v["peer"], "127.0.0.1:4");
        assert_eq!(v["attempts"], 3);
        assert_eq!(v["ok"], false);
        assert!(
            v["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
    }

    #[test]
    fn text_lines_quote_strings_and_escape_control_characters() {
        let lines = logged(LogFormat::Text, || {
            tracing::info!(path = "a b\n\u{1b}[2J", n = 2_u64, "started");
        });
        let [line] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        assert!(
            line.ends_with(" info  started path=\"a b\\n\\u{1b}[2J\" n=2\n"),
            "{line:?}"
        );
    }
}
