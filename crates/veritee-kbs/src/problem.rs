//! RFC 7807 problem documents, in the shape CoCo clients read (`kbs_types::ErrorInformation`:
//! `type` and `detail`).

use kbs_types::ErrorInformation;

/// The prefix of every problem type, as Trustee's KBS names them.
pub const PROBLEM_TYPE_PREFIX: &str = "https://github.com/confidential-containers/kbs/errors/";

/// The media type of a problem document.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// A problem document of kind `kind` (e.g. `"AttestationFailed"`) saying `detail`.
pub fn problem(kind: &str, detail: impl Into<String>) -> ErrorInformation {
    ErrorInformation {
        error_type: format!("{PROBLEM_TYPE_PREFIX}{kind}"),
        detail: detail.into(),
    }
}
