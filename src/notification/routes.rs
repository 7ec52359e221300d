//! `/api/v1/notifications`: thin handlers over the notification services.

use poem::web::Data;
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    core::{auth::AnyUser, ids::NotificationId, pagination::Page},
    error::{Fails, fails::*},
    notification::{schemas::Notification, services},
    routes::{ApiTags, NoContent},
    state::AppState,
};

pub struct NotificationsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Notifications")]
impl NotificationsApi {
    /// The caller's notifications, newest first (`unread=true`: only unread ones).
    #[oai(path = "/notifications", method = "get")]
    async fn list(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        unread: Query<Option<bool>>,
        #[oai(validator(minimum(value = "1")))] limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Notification>>, Fails<{ AUTH | LIST }>> {
        services::list(
            &state,
            user.0.id,
            unread.0.unwrap_or(false),
            limit.0,
            cursor.0.as_deref(),
        )
        .await
        .map(Json)
        .map_err(Fails)
    }

    /// Mark one of the caller's notifications read (anyone else's: 404).
    #[oai(path = "/notifications/:id/read", method = "post")]
    async fn read(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
        id: Path<NotificationId>,
    ) -> Result<NoContent, Fails<{ AUTH | NOT_FOUND }>> {
        services::mark_read(&state, user.0.id, id.0).await?;
        Ok(NoContent::Done)
    }

    /// Mark all of the caller's notifications read.
    #[oai(path = "/notifications/read-all", method = "post")]
    async fn read_all(
        &self,
        user: AnyUser,
        state: Data<&AppState>,
    ) -> Result<NoContent, Fails<AUTH>> {
        services::mark_all_read(&state, user.0.id).await?;
        Ok(NoContent::Done)
    }
}
