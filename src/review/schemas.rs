//! Request and response bodies of reviews.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use poem_openapi::Object;

use crate::{
    core::ids::{JobId, ReviewId, UserId},
    db::schema::reviews,
};

#[derive(Debug, Object, Queryable, Selectable)]
#[diesel(table_name = reviews, check_for_backend(diesel::pg::Pg))]
pub struct Review {
    pub id: ReviewId,
    pub job_id: JobId,
    pub worker_id: UserId,
    pub client_id: UserId,
    pub rating: i16,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Object)]
pub struct NewReview {
    /// 1 to 5.
    #[oai(validator(minimum(value = "1"), maximum(value = "5")))]
    pub rating: i64,
    /// Up to 2000 characters.
    #[oai(nullable, validator(max_length = 2000))]
    pub comment: Option<String>,
}
