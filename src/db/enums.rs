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
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    AsExpression,
    FromSqlRow,
    poem_openapi::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[diesel(sql_type = sql_types::UserRole)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
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
}
pg_enum!(AuditAction, sql_types::AuditAction, {
    UserSuspended => "user_suspended",
    UserReinstated => "user_reinstated",
});
