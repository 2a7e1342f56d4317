//! The status of an instance and of its saga steps.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Running.
    Pending,
    /// Its completed steps' compensations are being dispatched.
    Compensating,
    /// Ended: it finished, or finished compensating.
    Completed,
    /// Ended: a compensation could not be dispatched, or the process failed it.
    Failed,
}

impl Status {
    /// Lower-case name (`"pending"`, `"compensating"`, `"completed"`, `"failed"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Compensating => "compensating",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    /// Whether the instance has ended.
    pub fn is_ended(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "pending" => Status::Pending,
            "compensating" => Status::Compensating,
            "completed" => Status::Completed,
            "failed" => Status::Failed,
            other => return Err(format!("unknown process status {other:?}")),
        })
    }
}

/// Where a completed saga step stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Completed and in effect.
    Done,
    /// Its compensation is issued, not yet dispatched.
    Compensating,
    /// Its compensation was dispatched (or it had none).
    Compensated,
    /// Its compensation could not be dispatched, for this reason.
    CompensationFailed(String),
}

/// A completed saga step and how to undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step<C> {
    /// Its name.
    pub name: String,
    /// The command that undoes it.
    pub compensation: Option<C>,
    /// Where it stands.
    pub state: StepState,
}
