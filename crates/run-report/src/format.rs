//! Numbers with their units, the same way in the HTML report, the comparison table and JUnit messages.
//!
//! A missing value is always shown as `n/a`, never as 0 (a 0 ms p95 and "not measured" are different facts).

/// Shown for a value that is absent.
pub const NOT_AVAILABLE: &str = "n/a";

/// Milliseconds: `0.412 ms`, `12.3 ms`, `1234 ms`.
pub fn ms(value: Option<f64>) -> String {
    value.map_or_else(
        || NOT_AVAILABLE.to_owned(),
        |v| format!("{} ms", significant(v)),
    )
}

/// A plain number with about three significant digits (`0.412`, `12.3`, `1234`); whole numbers without
/// decimals (`50`, `8`).
pub fn significant(v: f64) -> String {
    if !v.is_finite() {
        return NOT_AVAILABLE.to_owned();
    }
    match v.abs() {
        a if a >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// An RFC 3339 instant as `2026-11-27 13:11:34 UTC` (other text is returned unchanged).
pub fn timestamp(rfc3339: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    let Ok(at) = time::OffsetDateTime::parse(rfc3339, &Rfc3339) else {
        return rfc3339.to_owned();
    };
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        at.date(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Bytes in binary units: `512 B`, `12.3 MiB`.
pub fn bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = value;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{} {}", significant(v), UNITS[unit])
}

/// Percent: `0.42 %`.
pub fn percent(value: Option<f64>) -> String {
    value.map_or_else(
        || NOT_AVAILABLE.to_owned(),
        |v| format!("{} %", significant(v)),
    )
}

/// Requests per second: `1234 req/s`.
pub fn rate(value: Option<f64>) -> String {
    value.map_or_else(
        || NOT_AVAILABLE.to_owned(),
        |v| format!("{} req/s", significant(v)),
    )
}

/// A duration in seconds as `1h 02m 03s`, `4m 05s` or `6.2 s`.
pub fn duration_secs(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return NOT_AVAILABLE.to_owned();
    }
    let whole = secs.round() as u64;
    match whole {
        0..60 => format!("{} s", significant(secs)),
        60..3600 => format!("{}m {:02}s", whole / 60, whole % 60),
        _ => format!(
            "{}h {:02}m {:02}s",
            whole / 3600,
            whole % 3600 / 60,
            whole % 60
        ),
    }
}

/// A value in a unit named as in threshold results (`ms`, `%`, `req/s`, `requests`, `bytes`, ...).
pub fn with_unit(value: Option<f64>, unit: &str) -> String {
    match (value, unit) {
        (None, _) => NOT_AVAILABLE.to_owned(),
        (Some(v), "bytes" | "B") => bytes(v),
        (Some(v), "bytes/h") => format!("{}/h", bytes(v)),
        (Some(v), "%") => percent(Some(v)),
        (Some(v), "") => significant(v),
        (Some(v), unit) => format!("{} {unit}", significant(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_table() {
        for (got, expected) in [
            (ms(Some(0.4123)), "0.412 ms"),
            (ms(Some(12.34)), "12.3 ms"),
            (ms(Some(1234.4)), "1234 ms"),
            (ms(None), "n/a"),
            (bytes(512.0), "512 B"),
            (bytes(12.5 * 1024.0 * 1024.0), "12.5 MiB"),
            (percent(Some(0.0)), "0 %"),
            (rate(Some(1520.7)), "1521 req/s"),
            (duration_secs(6.24), "6.24 s"),
            (duration_secs(245.0), "4m 05s"),
            (duration_secs(3723.0), "1h 02m 03s"),
            (with_unit(Some(2048.0), "bytes/h"), "2 KiB/h"),
            (with_unit(Some(3.0), "requests"), "3 requests"),
            (significant(8.0), "8"),
            (significant(8.5), "8.50"),
            (
                timestamp("2026-11-27T13:11:34.3254683Z"),
                "2026-11-27 13:11:34 UTC",
            ),
            (timestamp("yesterday"), "yesterday"),
        ] {
            assert_eq!(got, expected);
        }
    }
}
