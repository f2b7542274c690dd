//! Sizes as the kernel writes them: `32K` (cache `size`), `1024 kB` (`meminfo`), `4096` (bytes).
//!
//! Units are binary whatever their spelling (`K`, `KB`, `kB`, `KiB` all mean 1024), as in every
//! sysfs and procfs file that carries a size. The parser accepts surrounding whitespace and a
//! space between number and unit, rejects anything else with a typed error, and never overflows.

/// Why a size did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeParseError {
    /// No digits where the number should be.
    #[error("no number in size {input:?}")]
    NoNumber {
        /// The input (cut to 64 characters).
        input: String,
    },
    /// A suffix that is not a known unit.
    #[error("unknown unit {unit:?} in size {input:?}")]
    UnknownUnit {
        /// The suffix found.
        unit: String,
        /// The input (cut to 64 characters).
        input: String,
    },
    /// The value does not fit in 64 bits of bytes.
    #[error("size {input:?} overflows 64 bits")]
    Overflow {
        /// The input (cut to 64 characters).
        input: String,
    },
}

fn cut(input: &str) -> String {
    input.chars().take(64).collect()
}

/// The multiplier of a unit suffix, case-insensitive; `None` if unknown.
fn unit_multiplier(unit: &str) -> Option<u64> {
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    Some(1u64 << shift)
}

/// Parses a size into bytes: digits, optional whitespace, optional unit (`K`, `kB`, `MiB`…).
///
/// # Errors
/// [`SizeParseError`] when there is no number, the unit is unknown, or the value overflows.
pub fn parse_size(input: &str) -> Result<u64, SizeParseError> {
    let text = input.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, rest) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(SizeParseError::NoNumber { input: cut(input) });
    }
    let unit = rest.trim_start();
    let multiplier = unit_multiplier(unit).ok_or_else(|| SizeParseError::UnknownUnit {
        unit: cut(unit),
        input: cut(input),
    })?;
    let value: u64 = digits
        .parse()
        .map_err(|_| SizeParseError::Overflow { input: cut(input) })?;
    value
        .checked_mul(multiplier)
        .ok_or_else(|| SizeParseError::Overflow { input: cut(input) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_forms() {
        assert_eq!(parse_size("32K\n"), Ok(32 * 1024));
        assert_eq!(parse_size("32768K"), Ok(32 << 20));
        assert_eq!(parse_size("1024 kB"), Ok(1 << 20));
        assert_eq!(parse_size("  4096 "), Ok(4096));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn garbage() {
        assert!(matches!(parse_size(""), Err(SizeParseError::NoNumber { .. })));
        assert!(matches!(parse_size("K"), Err(SizeParseError::NoNumber { .. })));
        assert!(matches!(parse_size("-1K"), Err(SizeParseError::NoNumber { .. })));
        assert!(matches!(
            parse_size("12Q"),
            Err(SizeParseError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("12 K B"),
            Err(SizeParseError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("1.5M"),
            Err(SizeParseError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("99999999999999999999"),
            Err(SizeParseError::Overflow { .. })
        ));
        assert!(matches!(
            parse_size("17179869184T"),
            Err(SizeParseError::Overflow { .. })
        ));
    }
}
