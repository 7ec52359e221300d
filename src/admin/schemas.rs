//! Request bodies of the admin endpoints.

use poem_openapi::Object;

/// Why an admin took an action; kept in the audit log.
#[derive(Debug, Object)]
pub struct ReasonRequest {
    /// 1 to 1000 characters. Required to suspend; checked after the target is found, so
    /// an unknown user is 404 whatever the body says.
    pub reason: Option<String>,
}
