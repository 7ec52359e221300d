//! Rust enums for the PostgreSQL enum types, shared by rows, API schemas and tokens.

use diesel::{
    deserialize::{FromSql, FromSqlRow},
    expression::AsExpression,
    pg::{Pg, PgValue},
    serialize::{IsNull, Output, ToSql},
};

use super::schema::sql_types;

/// Maps a Rust enum onto a PostgreSQL enum type by label, in both directions, and
/// gives it `as_str`. The labels are the single source of truth for both sides.
macro_rules! pg_enum {
    ($ty:ident, $sql:ty, { $($variant:ident => $label:literal),+ $(,)? }) => {
        impl $ty {
            /// The PostgreSQL (and JSON) label.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $label),+ }
            }
        }

        /// The same label as the OpenAPI enum (the `same_json` tests hold them together).
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        /// Read back by label, so stored events and tokens round-trip through JSON.
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let label = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                match label.as_ref() {
                    $($label => Ok(Self::$variant),)+
                    other => Err(serde::de::Error::unknown_variant(other, &[$($label),+])),
                }
            }
        }

        impl ToSql<$sql, Pg> for $ty {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
                std::io::Write::write_all(out, self.as_str().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl FromSql<$sql, Pg> for $ty {
            fn from_sql(value: PgValue<'_>) -> diesel::deserialize::Result<Self> {
                match value.as_bytes() {
                    $(bytes if bytes == $label.as_bytes() => Ok(Self::$variant),)+
                    other => Err(format!(
                        concat!("unknown ", stringify!($ty), " label {:?}"),
                        String::from_utf8_lossy(other)
                    ).into()),
                }
            }
        }
    };
}

/// A user's single role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow, poem_openapi::Enum)]
#[diesel(sql_type = sql_types::UserRole)]
#[oai(rename_all = "snake_case")]
pub enum UserRole {
    Client,
    Worker,
    Admin,
}
pg_enum!(UserRole, sql_types::UserRole, { Client => "client", Worker => "worker", Admin => "admin" });

/// Whether a user may use the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow, poem_openapi::Enum)]
#[diesel(sql_type = sql_types::UserStatus)]
#[oai(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Suspended,
}
pg_enum!(UserStatus, sql_types::UserStatus, { Active => "active", Suspended => "suspended" });

/// What an admin did, as recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow, poem_openapi::Enum)]
#[diesel(sql_type = sql_types::AuditAction)]
#[oai(rename_all = "snake_case")]
pub enum AuditAction {
    UserSuspended,
    UserReinstated,
    KycApproved,
    KycRejected,
    ServiceHidden,
    ServiceUnhidden,
    ReviewHidden,
}
pg_enum!(AuditAction, sql_types::AuditAction, {
    UserSuspended => "user_suspended",
    UserReinstated => "user_reinstated",
    KycApproved => "kyc_approved",
    KycRejected => "kyc_rejected",
    ServiceHidden => "service_hidden",
    ServiceUnhidden => "service_unhidden",
    ReviewHidden => "review_hidden",
});

/// A worker's identity verification, derived from their submissions (see
/// `worker::kyc::derive_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow, poem_openapi::Enum)]
#[diesel(sql_type = sql_types::KycStatus)]
#[oai(rename_all = "snake_case")]
pub enum KycStatus {
    None,
    Pending,
    Approved,
    Rejected,
}
pg_enum!(KycStatus, sql_types::KycStatus, {
    None => "none",
    Pending => "pending",
    Approved => "approved",
    Rejected => "rejected",
});

/// What identity document a KYC submission is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow, poem_openapi::Enum)]
#[diesel(sql_type = sql_types::KycDocumentType)]
#[oai(rename_all = "snake_case")]
pub enum KycDocumentType {
    Passport,
    NationalId,
    DriverLicense,
    ProofOfAddress,
}
pg_enum!(KycDocumentType, sql_types::KycDocumentType, {
    Passport => "passport",
    NationalId => "national_id",
    DriverLicense => "driver_license",
    ProofOfAddress => "proof_of_address",
});

impl std::str::FromStr for KycDocumentType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        [
            Self::Passport,
            Self::NationalId,
            Self::DriverLicense,
            Self::ProofOfAddress,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or(())
    }
}

/// The review state of one KYC submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow, poem_openapi::Enum)]
#[diesel(sql_type = sql_types::KycDecision)]
#[oai(rename_all = "snake_case", rename = "KycSubmissionStatus")]
pub enum KycDecision {
    Pending,
    Approved,
    Rejected,
}
pg_enum!(KycDecision, sql_types::KycDecision, {
    Pending => "pending",
    Approved => "approved",
    Rejected => "rejected",
});

/// A listing's own state; public visibility also needs an active, KYC-approved worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow, poem_openapi::Enum)]
#[diesel(sql_type = sql_types::ServiceStatus)]
#[oai(rename_all = "snake_case")]
pub enum ServiceStatus {
    Active,
    Hidden,
    Deleted,
}
pg_enum!(ServiceStatus, sql_types::ServiceStatus, {
    Active => "active",
    Hidden => "hidden",
    Deleted => "deleted",
});

/// Whether `price_cents` is for the whole job or per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow, poem_openapi::Enum)]
#[diesel(sql_type = sql_types::PricingUnit)]
#[oai(rename_all = "snake_case")]
pub enum PricingUnit {
    Fixed,
    Hourly,
}
pg_enum!(PricingUnit, sql_types::PricingUnit, { Fixed => "fixed", Hourly => "hourly" });

/// Where a booking stands in its lifecycle (see `job::lifecycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow, poem_openapi::Enum)]
#[diesel(sql_type = sql_types::JobStatus)]
#[oai(rename_all = "snake_case")]
pub enum JobStatus {
    Requested,
    Accepted,
    Declined,
    InProgress,
    Completed,
    Cancelled,
    Expired,
}
pg_enum!(JobStatus, sql_types::JobStatus, {
    Requested => "requested",
    Accepted => "accepted",
    Declined => "declined",
    InProgress => "in_progress",
    Completed => "completed",
    Cancelled => "cancelled",
    Expired => "expired",
});

/// What a single-use account link proves or allows (see `auth::account_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = sql_types::AccountTokenPurpose)]
pub enum AccountTokenPurpose {
    VerifyEmail,
    ResetPassword,
}
pg_enum!(AccountTokenPurpose, sql_types::AccountTokenPurpose, {
    VerifyEmail => "verify_email",
    ResetPassword => "reset_password",
});
