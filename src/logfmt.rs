//! How the human log format writes fields: every control character in a
//! field (a newline, an escape code) is written as an escape, so a value a
//! client chose (a user name, a path) cannot forge a log line or drive a
//! terminal. The JSON format escapes by itself.

use std::fmt;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

/// The field formatter of the human format: `name=value` pairs separated
/// by spaces, the message bare, control characters escaped.
pub fn human_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(
        |w: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn fmt::Debug| {
            if field.name() != "message" {
                write!(w, "{}=", field.name())?;
            }
            escape_into(w, &format!("{value:?}"))
        },
    )
    .delimited(" ")
}

/// Write `text` with every control character escaped (`\n`, `\u{1b}`).
pub fn escape_into(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(out, "{}", c.escape_default())?;
        } else {
            out.write_char(c)?;
        }
    }
    Ok(())
}

/// Unix seconds as RFC 3339 in UTC (`2026-12-02T05:30:00Z`).
pub fn rfc3339(unix: u64) -> String {
    let at = i64::try_from(unix)
        .ok()
        .and_then(|n| time::OffsetDateTime::from_unix_timestamp(n).ok());
    at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "(out of range)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        escape_into(
            &mut out,
            "alice\n2026-12-02T00:00:00Z INFO signed in user=admin\u{1b}[31m",
        )
        .expect("write");
        assert_eq!(out, "alice\\n2026-12-02T00:00:00Z INFO signed in user=admin\\u{1b}[31m");
        assert!(!out.contains('\n') && !out.contains('\u{1b}'));
        let mut plain = String::new();
        escape_into(&mut plain, "café /a b").expect("write");
        assert_eq!(plain, "café /a b");
    }
}
