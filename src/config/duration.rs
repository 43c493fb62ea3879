//! Durations as written in the config: `"500ms"`, `"90s"`, `"15m"`, `"4h"`, `"14d"`.

use std::time::Duration;

/// Parse a duration: a whole number followed by one of `ms`, `s`, `m`, `h`, `d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let secs_per_unit = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(secs_per_unit).map(Duration::from_secs)
}

/// Write a duration back in the largest unit that divides it exactly.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs != 0 && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expected: Option<u64>) {
        assert_eq!(parse_duration(text).map(|d| d.as_millis() as u64), expected, "{text:?}");
    }

    #[test]
    fn parses_each_unit() {
        check("500ms", Some(500));
        check("90s", Some(90_000));
        check("15m", Some(900_000));
        check("4h", Some(14_400_000));
        check("14d", Some(1_209_600_000));
        check("0s", Some(0));
    }

    #[test]
    fn refuses_other_forms() {
        for bad in [
            "",
            "s",
            "10",
            "10 s",
            "1.5h",
            "-1s",
            "10x",
            "10S",
            "99999999999999999999d",
            "18446744073709551615d",
        ] {
            check(bad, None);
        }
    }

    #[test]
    fn formats_in_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(14 * 86_400)), "14d");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
