//! Sizes as people write them: `4096`, `64K`, `512M`, `2G`, and the Kubernetes spellings `64Ki`,
//! `512Mi`, `2Gi` (every suffix is a power of 1024; `KiB`, `MB` and the like read the same). The
//! `--max-file-size` and `--max-input-size` flags and `spec.limits` in `tally.yaml` read them.

/// Parses a size in bytes.
pub fn parse(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = t[digits.len()..].to_ascii_uppercase();
    let unit = unit.strip_suffix('B').unwrap_or(&unit);
    let unit = unit.strip_suffix('I').unwrap_or(unit);
    let wrong =
        || format!("`{s}`: a size is a number with an optional K, M, G or T (or Ki, Mi, Gi, Ti)");
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(wrong()),
    };
    let n: u64 = digits.trim().parse().map_err(|_| wrong())?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}`: too large"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sizes_read_as_powers_of_1024() {
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("64K"), Ok(64 << 10));
        assert_eq!(parse("512M"), Ok(512 << 20));
        assert_eq!(parse("512Mi"), Ok(512 << 20));
        assert_eq!(parse("2GiB"), Ok(2 << 30));
        assert_eq!(parse("2gb"), Ok(2 << 30));
        assert_eq!(parse(" 1T "), Ok(1 << 40));
        assert!(parse("12X").is_err());
        assert!(parse("M").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("99999999999T").unwrap_err().contains("too large"));
    }
}
