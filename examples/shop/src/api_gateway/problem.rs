//! Problems only the gateway answers: a service that does not answer, or answers
//! something unreadable.

use std::fmt::Display;

use axum::http::StatusCode;

use super::Service;
use crate::api::Problem;

impl Problem {
    /// 503: `service` did not answer (refused, cut, timed out, its breaker open, or too
    /// many calls to it in flight); `cause` goes to the log only.
    pub fn upstream_down(service: Service, cause: impl Display) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "upstream-unavailable",
            title: "A service is unavailable",
            detail: format!(
                "the {} service did not answer; retry later (the gateway's log has the \
                 details under this instance)",
                service.as_str()
            ),
            retry_after: Some(1),
            cause: Some(format!("{}: {cause}", service.as_str()).into()),
            instance: None,
        }
    }

    /// 502: `service` answered something the gateway could not read; `cause` goes to
    /// the log only.
    pub fn bad_upstream(service: Service, cause: impl Display) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            kind: "bad-upstream-answer",
            title: "A service answered badly",
            detail: format!(
                "the {} service's answer could not be read (the gateway's log has the \
                 details under this instance)",
                service.as_str()
            ),
            retry_after: None,
            cause: Some(format!("{}: {cause}", service.as_str()).into()),
            instance: None,
        }
    }
}
