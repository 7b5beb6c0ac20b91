//! Invariants that several fuzz targets check.

use smo::validate::Finding;

/// Line breaks as YAML counts them: `\n`, `\r\n` and a lone `\r`.
pub fn line_breaks(text: &str) -> usize {
    text.replace("\r\n", "\n").matches(['\n', '\r']).count()
}

/// Every finding names `shown`, a position inside `text` and says
/// something; findings that come back as a list are sorted.
pub fn check_findings(findings: &[Finding], text: &str, shown: &str) {
    let last_line = line_breaks(text) + 1;
    for f in findings {
        assert_eq!(f.file, shown, "{f}");
        assert!(
            f.line >= 1 && f.line <= last_line,
            "line out of the file (last {last_line}): {f}"
        );
        assert!(f.column >= 1, "{f}");
        assert!(!f.message.is_empty(), "{f}");
    }
}

/// Asserts that `findings` are in [`smo::validate::findings::sort`] order.
pub fn check_sorted(findings: &[Finding]) {
    let mut sorted = findings.to_vec();
    smo::validate::findings::sort(&mut sorted);
    assert_eq!(sorted, findings, "findings are sorted");
}
