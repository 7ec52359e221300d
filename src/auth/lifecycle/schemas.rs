//! Request and response bodies of the account-lifecycle endpoints. Bodies holding
//! tokens or passwords do not derive `Debug`, so they cannot reach a log line.

use poem_openapi::Object;

#[derive(Object)]
pub struct VerifyEmailRequest {
    /// The `token` of the link in the verification email.
    pub token: String,
}

#[derive(Object)]
pub struct ForgotPasswordRequest {
    pub email: String,
}

#[derive(Object)]
pub struct ResetPasswordRequest {
    /// The `token` of the link in the reset email.
    pub token: String,
    /// 8 to 128 characters.
    pub new_password: String,
}

/// The request was taken; an email follows when there is someone to send it to.
#[derive(Debug, Object)]
pub struct Queued {
    pub detail: String,
}
