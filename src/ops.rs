//! Operations endpoints: liveness, readiness and Prometheus metrics.

use deadpool_redis::redis;
use diesel_async::SimpleAsyncConnection;
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    payload::{Json, PlainText},
};
use sha2::{Digest, Sha256};

use crate::{
    core,
    error::{AppError, Fails, fails::*},
    routes::ApiTags,
    state::AppState,
};

pub struct OpsApi;

#[derive(Debug, Object)]
pub struct Status {
    /// Always `ok`.
    pub status: String,
}

#[derive(ApiResponse)]
pub enum MetricsText {
    /// Prometheus text exposition format.
    #[oai(status = 200, content_type = "text/plain; version=0.0.4")]
    Ok(PlainText<String>),
}

fn ok() -> Json<Status> {
    Json(Status {
        status: "ok".to_owned(),
    })
}

#[OpenApi(tag = "ApiTags::Operations")]
impl OpsApi {
    /// The process is alive (touches no dependency).
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Json<Status> {
        ok()
    }

    /// PostgreSQL and Redis both answer; 503 names the one that does not.
    #[oai(path = "/ready", method = "get")]
    async fn ready(&self, state: Data<&AppState>) -> Result<Json<Status>, Fails<PROBE>> {
        let database = async {
            let mut conn = state.conn().await?;
            conn.batch_execute("SELECT 1").await.map_err(AppError::from)
        };
        let redis = core::redis::run(&state.redis, async |conn| {
            redis::cmd("PING").query_async::<String>(conn).await
        });
        let (database, redis) = tokio::join!(database, redis);
        database.map_err(|_| AppError::Unavailable("database"))?;
        redis.map_err(|_| AppError::Unavailable("redis"))?;
        Ok(ok())
    }

    /// Request counts and latencies by route, and pool usage. Requires
    /// `Authorization: Bearer <METRICS_TOKEN>`; without a configured token it is not served (404).
    #[oai(path = "/metrics", method = "get")]
    async fn metrics(
        &self,
        state: Data<&AppState>,
        req: &poem::Request,
    ) -> Result<MetricsText, Fails<{ AUTH | NOT_FOUND }>> {
        let expected = state
            .settings
            .metrics_token
            .as_ref()
            .ok_or(AppError::NotFound)?;
        let presented = req
            .headers()
            .get(poem::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Digests compared, so the time taken says nothing about the token's bytes.
        if Sha256::digest(presented.as_bytes()) != Sha256::digest(expected.expose().as_bytes()) {
            return Err(Fails(AppError::Unauthorized(
                "a valid metrics token is required",
            )));
        }
        let db = state.db.status();
        core::metrics::record_pool(db.size, db.available, db.max_size, db.waiting);
        Ok(MetricsText::Ok(PlainText(core::metrics::handle().render())))
    }
}
