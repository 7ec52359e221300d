//! The job lifecycle as data: `(from, action, who) → to`, or why not.
//!
//! ```text
//! requested ──accept──▶ accepted ──start──▶ in_progress ──complete──▶ completed
//!     │ └──decline──▶ declined      │
//!     └──cancel──▶ cancelled ◀──cancel┘          (expiry: requested ──▶ expired)
//! ```
//! Pure and exhaustively tested; `services.rs` applies it with a conditional UPDATE so
//! races resolve in the database.

use crate::db::enums::JobStatus;

/// What a participant asks a job to do. Serialized (in events) by the same names as
/// [`Action::as_str`]; a test holds the two together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Accept,
    Decline,
    Start,
    Complete,
    Cancel,
}

/// How the caller relates to the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Client,
    Worker,
    /// An admin who is neither party: may look, may not act.
    Admin,
}

/// Why a transition cannot happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The action belongs to the other party (403).
    NotYours,
    /// Not allowed from the current status (409 `job_invalid_transition`).
    InvalidFrom(JobStatus),
}

impl Action {
    /// The action's name, as in its route (`/jobs/{id}/accept`) and in events.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::Start => "start",
            Self::Complete => "complete",
            Self::Cancel => "cancel",
        }
    }

    /// Who may take this action. Checked before the status (403 before 409).
    fn allowed(self, party: Party) -> bool {
        match self {
            Self::Accept | Self::Decline | Self::Start | Self::Complete => party == Party::Worker,
            Self::Cancel => matches!(party, Party::Client | Party::Worker),
        }
    }
}

/// The status `action` by `party` leads to from `from`.
pub fn transition(from: JobStatus, action: Action, party: Party) -> Result<JobStatus, Refusal> {
    use JobStatus::{Accepted, Cancelled, Completed, Declined, InProgress, Requested};
    if !action.allowed(party) {
        return Err(Refusal::NotYours);
    }
    match (from, action) {
        (Requested, Action::Accept) => Ok(Accepted),
        (Requested, Action::Decline) => Ok(Declined),
        (Accepted, Action::Start) => Ok(InProgress),
        (InProgress, Action::Complete) => Ok(Completed),
        (Requested | Accepted, Action::Cancel) => Ok(Cancelled),
        (from, _) => Err(Refusal::InvalidFrom(from)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    const STATUSES: [JobStatus; 7] = [
        Requested, Accepted, Declined, InProgress, Completed, Cancelled, Expired,
    ];
    const ACTIONS: [Action; 5] = [
        Action::Accept,
        Action::Decline,
        Action::Start,
        Action::Complete,
        Action::Cancel,
    ];
    const PARTIES: [Party; 3] = [Party::Client, Party::Worker, Party::Admin];

    /// The whole table, written out: every allowed `(from, action, party) → to`.
    const ALLOWED: &[(JobStatus, Action, Party, JobStatus)] = &[
        (Requested, Action::Accept, Party::Worker, Accepted),
        (Requested, Action::Decline, Party::Worker, Declined),
        (Accepted, Action::Start, Party::Worker, InProgress),
        (InProgress, Action::Complete, Party::Worker, Completed),
        (Requested, Action::Cancel, Party::Client, Cancelled),
        (Requested, Action::Cancel, Party::Worker, Cancelled),
        (Accepted, Action::Cancel, Party::Client, Cancelled),
        (Accepted, Action::Cancel, Party::Worker, Cancelled),
    ];

    #[test]
    fn serialized_names_are_the_route_names() {
        for action in ACTIONS {
            let json = serde_json::to_value(action).expect("serialize");
            assert_eq!(json, action.as_str());
            assert_eq!(serde_json::from_value::<Action>(json).ok(), Some(action));
        }
    }

    #[test]
    fn every_combination_matches_the_table() {
        for from in STATUSES {
            for action in ACTIONS {
                for party in PARTIES {
                    let result = transition(from, action, party);
                    let expected = ALLOWED
                        .iter()
                        .find(|(f, a, p, _)| *f == from && *a == action && *p == party)
                        .map(|(.., to)| *to);
                    match expected {
                        Some(to) => assert_eq!(result, Ok(to), "{from:?} {action:?} {party:?}"),
                        None => assert!(
                            result.is_err(),
                            "{from:?} {action:?} {party:?} should be refused"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn the_wrong_party_is_refused_whatever_the_status() {
        for from in STATUSES {
            assert_eq!(
                transition(from, Action::Accept, Party::Client),
                Err(Refusal::NotYours)
            );
            assert_eq!(
                transition(from, Action::Cancel, Party::Admin),
                Err(Refusal::NotYours)
            );
        }
    }

    #[test]
    fn terminal_statuses_allow_nothing() {
        for from in [Declined, Completed, Cancelled, Expired] {
            for action in ACTIONS {
                for party in PARTIES {
                    assert!(transition(from, action, party).is_err());
                }
            }
        }
    }
}
