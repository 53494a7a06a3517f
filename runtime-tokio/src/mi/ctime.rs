//! `ctime(3)` without the newline, in UTC: `Thu Nov 26 01:55:49 2026`.
//!
//! OpenSIPS formats report dates and `uptime` with `ctime`, i.e. in the host's local time
//! zone; the captures in `vectors/opensips/mi/` come from a host running in UTC. We always
//! use UTC, so the same timestamp gives the same text on every host.

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `unix` seconds as `asctime` writes them (day of month padded to two characters with a
/// space), in UTC.
pub fn ctime_utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize;
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS.get(weekday).copied().unwrap_or("???"),
        MONTHS
            .get(month.saturating_sub(1) as usize)
            .copied()
            .unwrap_or("???"),
        day,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        year
    )
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_captured_dates() {
        assert_eq!(ctime_utc(1_795_658_149), "Thu Nov 26 01:55:49 2026");
        assert_eq!(ctime_utc(1_795_658_251), "Thu Nov 26 01:57:31 2026");
        assert_eq!(ctime_utc(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime_utc(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(ctime_utc(-1), "Wed Dec 31 23:59:59 1969");
        assert_eq!(ctime_utc(1_709_251_199), "Thu Feb 29 23:59:59 2024");
    }
}
