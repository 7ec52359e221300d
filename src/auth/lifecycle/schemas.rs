//! Request and response bodies of the account-lifecycle endpoints. Bodies holding
//! tokens or passwords do not derive `Debug`, so they cannot reach a log line.

use poem_openapi::{Object, types::Email};

#[derive(Object)]
pub struct VerifyEmailRequest {
    /// The `token` of the link in the verification email.
    pub token: String,
}

#[derive(Object)]
pub struct ForgotPasswordRequest {
    #[oai(validator(max_length = 254))]
    pub email: Email,
}

#[derive(Object)]
pub struct ResetPasswordRequest {
    /// The `token` of the link in the reset email.
    pub token: String,
    /// 8 to 128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub new_password: String,
}

/// The request was taken; an email follows when there is someone to send it to.
#[derive(Debug, Object)]
pub struct Queued {
    pub detail: String,
}
