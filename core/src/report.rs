//! Status/report rings of the `clusterer` group (docs/behaviour.md §13): each identifier keeps the
//! last [`REPORT_RING_LEN`] reports.

use alloc::collections::VecDeque;
use alloc::string::String;

/// Reports kept per identifier (OpenSIPS keeps 200).
pub const REPORT_RING_LEN: usize = 200;

/// One report: when and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// UNIX time of the report.
    pub unix_time: i64,
    /// The report text, e.g. `Node [2], cluster [1] is UP`.
    pub text: String,
}

/// A bounded ring of reports; the oldest is discarded past [`REPORT_RING_LEN`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportRing {
    reports: VecDeque<Report>,
}

impl ReportRing {
    /// Appends a report, dropping the oldest when full.
    pub fn push(&mut self, unix_time: i64, text: String) {
        if self.reports.len() == REPORT_RING_LEN {
            self.reports.pop_front();
        }
        self.reports.push_back(Report { unix_time, text });
    }

    /// Reports, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Report> + ExactSizeIterator {
        self.reports.iter()
    }

    /// Number of reports held.
    pub fn len(&self) -> usize {
        self.reports.len()
    }

    /// `true` when no report was made yet.
    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn ring_keeps_the_last_200_reports() {
        let mut ring = ReportRing::default();
        for i in 0..250 {
            ring.push(i, format!("r{i}"));
        }
        assert_eq!(ring.len(), REPORT_RING_LEN);
        assert_eq!(ring.iter().next().map(|r| r.text.as_str()), Some("r50"));
        assert_eq!(ring.iter().last().map(|r| r.unix_time), Some(249));
    }
}
