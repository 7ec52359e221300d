//! Request and response bodies of the admin endpoints.

use poem_openapi::Object;

use crate::db::enums::{JobStatus, UserRole};

/// Why an admin took an action; kept in the audit log.
#[derive(Debug, Object)]
pub struct ReasonRequest {
    /// 1 to 1000 characters, not blank. Checked after the target is found, so an
    /// unknown target is 404 whatever the body says.
    #[oai(validator(max_length = 1000, pattern = r"\S"))]
    pub reason: String,
}

/// Platform figures for the admin dashboard, counted when asked.
#[derive(Debug, Object, PartialEq, Eq)]
pub struct Stats {
    pub users_by_role: UsersByRole,
    pub jobs_by_status: JobsByStatus,
    /// KYC submissions awaiting review.
    pub pending_kyc: i64,
    /// Listings in the `active` state (neither hidden by an admin nor deleted).
    pub services_active: i64,
}

/// Users of each role, every role present (0 when none).
#[derive(Debug, Default, Object, PartialEq, Eq)]
pub struct UsersByRole {
    pub client: i64,
    pub worker: i64,
    pub admin: i64,
}

impl FromIterator<(UserRole, i64)> for UsersByRole {
    fn from_iter<I: IntoIterator<Item = (UserRole, i64)>>(counts: I) -> Self {
        let mut all = Self::default();
        for (role, n) in counts {
            // Exhaustive: a new role fails to compile until it has a field.
            *match role {
                UserRole::Client => &mut all.client,
                UserRole::Worker => &mut all.worker,
                UserRole::Admin => &mut all.admin,
            } += n;
        }
        all
    }
}

/// Jobs in each status, every status present (0 when none).
#[derive(Debug, Default, Object, PartialEq, Eq)]
pub struct JobsByStatus {
    pub requested: i64,
    pub accepted: i64,
    pub declined: i64,
    pub in_progress: i64,
    pub completed: i64,
    pub cancelled: i64,
    pub expired: i64,
}

impl FromIterator<(JobStatus, i64)> for JobsByStatus {
    fn from_iter<I: IntoIterator<Item = (JobStatus, i64)>>(counts: I) -> Self {
        let mut all = Self::default();
        for (status, n) in counts {
            // Exhaustive: a new status fails to compile until it has a field.
            *match status {
                JobStatus::Requested => &mut all.requested,
                JobStatus::Accepted => &mut all.accepted,
                JobStatus::Declined => &mut all.declined,
                JobStatus::InProgress => &mut all.in_progress,
                JobStatus::Completed => &mut all.completed,
                JobStatus::Cancelled => &mut all.cancelled,
                JobStatus::Expired => &mut all.expired,
            } += n;
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_groups_count_zero() {
        let jobs: JobsByStatus = [(JobStatus::InProgress, 2), (JobStatus::Expired, 1)]
            .into_iter()
            .collect();
        assert_eq!(
            jobs,
            JobsByStatus {
                in_progress: 2,
                expired: 1,
                ..JobsByStatus::default()
            }
        );
        let users: UsersByRole = [(UserRole::Admin, 3)].into_iter().collect();
        assert_eq!(
            users,
            UsersByRole {
                admin: 3,
                ..UsersByRole::default()
            }
        );
    }
}
