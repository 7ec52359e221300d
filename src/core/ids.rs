//! Typed identifiers: a `UserId` cannot be passed where a `SessionId` is expected.
//!
//! All are UUID v7, so they sort by creation time (keyset pagination leans on that).

/// Declares a UUID newtype usable as a diesel column, an OpenAPI string and a JSON value.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            diesel_derive_newtype::DieselNewType, poem_openapi::NewType,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user of any role; also the id of their worker or client profile.
    UserId
);
id_type!(
    /// One login and every token its refreshes produce (the `sid` claim).
    SessionId
);
id_type!(
    /// A row of the admin audit log.
    AuditId
);
id_type!(
    /// A KYC document submission.
    KycId
);
id_type!(
    /// A service listing.
    ServiceId
);
id_type!(
    /// A booking.
    JobId
);
id_type!(
    /// A conversation between a client and a worker.
    ThreadId
);
id_type!(
    /// A client's review of a completed job.
    ReviewId
);
id_type!(
    /// A domain event in the outbox.
    EventId
);
id_type!(
    /// A notification shown to one user.
    NotificationId
);
id_type!(
    /// A chat message (its v7 order is the thread's history order).
    MessageId
);
