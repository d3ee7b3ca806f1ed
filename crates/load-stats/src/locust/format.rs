//! Locust's cell formatting: Python `repr` floats, 2-significant-digit response-time buckets, `N/A`.
//!
//! Why reproduce it: dashboards and scripts parse these files; a cell that is `12` in Locust and `12.0` here (or
//! the reverse) breaks an `int()` somewhere.

/// A float as Python's `repr` writes it (`12.0`, `0.1`, `1e-05`, `1.5e+16`).
pub fn python_float(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "nan".into()
        } else if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-4..1e16).contains(&magnitude) {
        return python_exponent(&format!("{value:e}"));
    }
    let text = format!("{value}");
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// Rust writes `1e-5` / `1.5e16`; Python writes `1e-05` / `1.5e+16`.
fn python_exponent(rust: &str) -> String {
    let (mantissa, exponent) = rust.split_once('e').unwrap_or((rust, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// Locust's `bucket_response_time`: round to ~2 significant digits (147 -> 150, 3432 -> 3400), half to even
/// like Python's `round`.
pub fn bucket_ms(ms: f64) -> i64 {
    let step = if ms < 100.0 {
        1.0
    } else if ms < 1_000.0 {
        10.0
    } else if ms < 10_000.0 {
        100.0
    } else {
        1_000.0
    };
    ((ms / step).round_ties_even() * step) as i64
}

/// A percentile cell: the bucketed value as an integer, or `N/A` without data.
pub fn percentile_cell(ms: Option<f64>) -> String {
    ms.map_or_else(|| "N/A".to_owned(), |ms| bucket_ms(ms).to_string())
}

/// Locust's median cell: the bucketed median, clamped to the exact min/max (then written as that float);
/// `0` without data.
pub fn median_cell(median: Option<f64>, min: Option<f64>, max: Option<f64>) -> String {
    let (Some(median), Some(min), Some(max)) = (median, min, max) else {
        return "0".to_owned();
    };
    let bucketed = bucket_ms(median);
    if bucketed as f64 > max {
        python_float(max)
    } else if (bucketed as f64) < min {
        python_float(min)
    } else {
        bucketed.to_string()
    }
}

/// A float cell that Locust writes as the integer `0` when there is no data (min, max, content size).
pub fn float_or_int_zero(value: Option<f64>) -> String {
    value.map_or_else(|| "0".to_owned(), python_float)
}

/// A float cell that Locust writes as `0.0` when there is no data (average, rates).
pub fn float_or_float_zero(value: Option<f64>) -> String {
    python_float(value.unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_match_python_repr() {
        for (value, python) in [
            (0.0, "0.0"),
            (25.0, "25.0"),
            (33.488846258062345, "33.488846258062345"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e16, "1.5e+16"),
            (1e22, "1e+22"),
            (-2.5, "-2.5"),
            (123456789.0, "123456789.0"),
        ] {
            assert_eq!(python_float(value), python, "{value}");
        }
    }

    #[test]
    fn buckets_match_locust() {
        for (ms, bucket) in [
            (0.4, 0),
            (0.5, 0),
            (1.5, 2),
            (43.7, 44),
            (99.4, 99),
            (147.0, 150),
            (145.0, 140),
            (3432.0, 3400),
            (58760.0, 59000),
        ] {
            assert_eq!(bucket_ms(ms), bucket, "{ms}");
        }
    }

    #[test]
    fn cells_without_data_follow_locust() {
        assert_eq!(percentile_cell(None), "N/A");
        assert_eq!(percentile_cell(Some(46.9)), "47");
        assert_eq!(median_cell(None, None, None), "0");
        assert_eq!(median_cell(Some(43.2), Some(0.9), Some(46.9)), "43");
        // One slow request: the bucket (1000) would exceed the exact max, so the max is written.
        assert_eq!(
            median_cell(Some(1_004.0), Some(1_004.0), Some(1_004.0)),
            "1004.0"
        );
        assert_eq!(median_cell(Some(0.4), Some(0.45), Some(0.6)), "0.45");
        assert_eq!(
            (float_or_int_zero(None), float_or_float_zero(None)),
            ("0".into(), "0.0".into())
        );
    }
}
