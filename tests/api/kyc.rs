//! KYC uploads: streaming, limits, magic bytes, cleanup, download, review.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{JPEG, PDF, PNG, TestApp};

fn files_in(dir: &str) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(std::path::Path::new(dir), &mut out);
    out
}

async fn submissions(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let mut conn = app.state.db.get().await.expect("conn");
    marketplace::db::schema::kyc_submissions::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count")
}

#[tokio::test]
async fn type_comes_from_the_bytes_not_the_client() {
    let app = TestApp::spawn().await;
    let (_, worker) = app.user("kyc@example.com", "worker").await;
    let pdf_as_png = app
        .upload_document(
            &worker.access,
            "passport",
            "scan.png",
            "image/png",
            PDF.to_vec(),
        )
        .await;
    assert_eq!(
        pdf_as_png.status,
        StatusCode::CREATED,
        "{}",
        pdf_as_png.body
    );
    assert_eq!(pdf_as_png.json["content_type"], "application/pdf");
    assert_eq!(pdf_as_png.json["status"], "pending");
    assert_eq!(pdf_as_png.json["size_bytes"], PDF.len());
    let expected: String =
        sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(PDF))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
    assert_eq!(pdf_as_png.json["sha256"], expected);

    let png_as_pdf = app
        .upload_document(
            &worker.access,
            "national_id",
            "scan.pdf",
            "application/pdf",
            PNG.to_vec(),
        )
        .await;
    assert_eq!(
        png_as_pdf.json["content_type"], "image/png",
        "{}",
        png_as_pdf.body
    );
    let jpeg = app
        .upload(
            &worker.access,
            vec![
                (
                    "document_type",
                    None,
                    "text/plain",
                    b"driver_license".to_vec(),
                ),
                ("file", Some("x"), "application/octet-stream", JPEG.to_vec()),
            ],
        )
        .await;
    assert_eq!(jpeg.json["content_type"], "image/jpeg", "{}", jpeg.body);

    let me = app.get("/api/v1/workers/me", Some(&worker.access)).await;
    assert_eq!(me.json["kyc_status"], "pending");
    let mine = app
        .get("/api/v1/workers/me/kyc?limit=2", Some(&worker.access))
        .await;
    assert_eq!(mine.json["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(mine.json["items"][0]["id"], jpeg.json["id"], "newest first");
    assert!(mine.json["next_cursor"].is_string());
}

#[tokio::test]
async fn rejected_uploads_leave_neither_file_nor_row() {
    let app = TestApp::spawn_with(&[("UPLOAD_MAX_BYTES", "1024")]).await;
    let (_, worker) = app.user("reject@example.com", "worker").await;
    let html = app
        .upload(
            &worker.access,
            vec![
                ("document_type", None, "text/plain", b"passport".to_vec()),
                (
                    "file",
                    Some("x.jpg"),
                    "image/jpeg",
                    b"<html><script>alert(1)</script></html>".to_vec(),
                ),
            ],
        )
        .await;
    html.assert_problem(415, "unsupported_media_type");

    let empty = app
        .upload_document(
            &worker.access,
            "passport",
            "x.pdf",
            "application/pdf",
            Vec::new(),
        )
        .await;
    empty.assert_invalid(&["file"]);

    let no_type = app
        .upload(
            &worker.access,
            vec![("file", Some("x.pdf"), "application/pdf", PDF.to_vec())],
        )
        .await;
    no_type.assert_invalid(&["document_type"]);
    assert_eq!(no_type.json["errors"][0]["field"], "document_type");

    let no_file = app
        .upload(
            &worker.access,
            vec![("document_type", None, "text/plain", b"passport".to_vec())],
        )
        .await;
    no_file.assert_invalid(&["file"]);

    let unknown_field = app
        .upload(
            &worker.access,
            vec![
                ("document_type", None, "text/plain", b"passport".to_vec()),
                ("file", Some("x.pdf"), "application/pdf", PDF.to_vec()),
                ("owner", None, "text/plain", b"someone else".to_vec()),
            ],
        )
        .await;
    unknown_field.assert_invalid(&["owner"]);

    let bad_type = app
        .upload(
            &worker.access,
            vec![
                (
                    "document_type",
                    None,
                    "text/plain",
                    b"library_card".to_vec(),
                ),
                ("file", Some("x.pdf"), "application/pdf", PDF.to_vec()),
            ],
        )
        .await;
    bad_type.assert_invalid(&["document_type"]);

    let mut big = PDF.to_vec();
    big.resize(1025, b'x');
    let over = app
        .upload_document(&worker.access, "passport", "x.pdf", "application/pdf", big)
        .await;
    over.assert_problem(413, "payload_too_large");
    assert_eq!(over.header("connection"), Some("close"));

    assert_eq!(submissions(&app).await, 0, "no row");
    assert!(
        files_in(&app.settings.upload_dir).is_empty(),
        "no file: {:?}",
        files_in(&app.settings.upload_dir)
    );
}

#[tokio::test]
async fn exactly_the_limit_is_accepted() {
    let app = TestApp::spawn_with(&[("UPLOAD_MAX_BYTES", "1024")]).await;
    let (_, worker) = app.user("limit@example.com", "worker").await;
    let mut exact = PDF.to_vec();
    exact.resize(1024, b'x');
    let reply = app
        .upload(
            &worker.access,
            vec![
                ("document_type", None, "text/plain", b"passport".to_vec()),
                (
                    "file",
                    Some("../../../../etc/passwd"),
                    "application/pdf",
                    exact,
                ),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.json["size_bytes"], 1024);
    let files = files_in(&app.settings.upload_dir);
    assert_eq!(files.len(), 1);
    assert!(
        files[0].starts_with(&app.settings.upload_dir),
        "stays in the upload dir"
    );
    assert!(
        !files[0].to_string_lossy().contains("passwd"),
        "the client's name never reaches a path"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0])
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_cut_off() {
    let app = TestApp::spawn_with(&[("UPLOAD_MAX_BYTES", "4096")]).await;
    let (_, worker) = app.user("chunked@example.com", "worker").await;
    let boundary = "XBOUNDARYX";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"document_type\"\r\n\r\npassport\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    );
    // 1 MiB of file in 64 KiB chunks, with no Content-Length.
    let mut chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(head.into_bytes()), Ok(PDF.to_vec())];
    chunks.extend((0..16).map(|_| Ok(vec![b'x'; 64 * 1024])));
    chunks.push(Ok(format!("\r\n--{boundary}--\r\n").into_bytes()));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = app
        .client
        .post(app.url("/api/v1/workers/me/kyc"))
        .bearer_auth(&worker.access)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await;
    // The server may close the connection before the client has sent everything;
    // either way nothing may be stored.
    if let Ok(response) = response {
        let reply = crate::common::Reply::from(response).await;
        reply.assert_problem(413, "payload_too_large");
    }
    assert_eq!(submissions(&app).await, 0);
    assert!(files_in(&app.settings.upload_dir).is_empty());
}

#[tokio::test]
async fn documents_are_served_to_their_worker_and_admins_only() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("docs-admin@example.com").await;
    let (_, owner) = app.user("owner@example.com", "worker").await;
    let (_, other) = app.user("other@example.com", "worker").await;
    let id = app.submit_kyc(&owner.access).await;
    let path = format!("/api/v1/kyc/{id}/file");

    let mine = app
        .client
        .get(app.url(&path))
        .bearer_auth(&owner.access)
        .send()
        .await
        .expect("get");
    assert_eq!(mine.status(), StatusCode::OK);
    assert_eq!(mine.headers()["content-type"], "application/pdf");
    assert!(
        mine.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment")
    );
    assert_eq!(mine.headers()["x-content-type-options"], "nosniff");
    assert_eq!(mine.bytes().await.expect("bytes").as_ref(), PDF);

    let as_admin = app.get(&path, Some(&admin.access)).await;
    assert_eq!(as_admin.status, StatusCode::OK);
    app.get(&path, Some(&other.access))
        .await
        .assert_problem(404, "not_found");
    app.get(&path, None)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn review_rules_and_kyc_status() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("reviewer@example.com").await;
    let (worker_id, worker) = app.user("status@example.com", "worker").await;
    let status = || async {
        app.get("/api/v1/workers/me", Some(&worker.access))
            .await
            .json["kyc_status"]
            .clone()
    };
    assert_eq!(status().await, "none");

    let first = app.submit_kyc(&worker.access).await;
    let second = app.submit_kyc(&worker.access).await;
    assert_eq!(status().await, "pending");

    let queue = app.get("/api/v1/admin/kyc", Some(&admin.access)).await;
    let ids: Vec<&str> = queue.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, [first.as_str(), second.as_str()], "oldest first");
    app.get("/api/v1/admin/kyc", Some(&worker.access))
        .await
        .assert_problem(403, "forbidden");

    let approve = |id: String| {
        let app = &app;
        let token = admin.access.clone();
        async move {
            app.call(
                Method::POST,
                &format!("/api/v1/admin/kyc/{id}/approve"),
                Some(&token),
                None,
            )
            .await
        }
    };
    let approved = approve(first.clone()).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.json["status"], "approved");
    assert!(approved.json["reviewed_at"].is_string());
    assert_eq!(
        status().await,
        "approved",
        "approved although another awaits review"
    );
    approve(first.clone())
        .await
        .assert_problem(409, "kyc_not_pending");

    let third = app.submit_kyc(&worker.access).await;
    assert_eq!(
        status().await,
        "approved",
        "a new upload never takes an approval away"
    );

    let no_reason = app
        .post(
            &format!("/api/v1/admin/kyc/{second}/reject"),
            Some(&admin.access),
            json!({}),
        )
        .await;
    no_reason.assert_invalid(&["reason"]);
    let rejected = app
        .post(
            &format!("/api/v1/admin/kyc/{second}/reject"),
            Some(&admin.access),
            json!({"reason": "blurry"}),
        )
        .await;
    assert_eq!(rejected.json["status"], "rejected", "{}", rejected.body);
    assert_eq!(rejected.json["reason"], "blurry");
    assert_eq!(
        status().await,
        "pending",
        "the latest decision rejected, and one still waits"
    );
    let rejected = app
        .post(
            &format!("/api/v1/admin/kyc/{third}/reject"),
            Some(&admin.access),
            json!({"reason": "expired"}),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::OK);
    assert_eq!(
        status().await,
        "rejected",
        "a rejection takes the approval away"
    );

    use marketplace::db::enums::AuditAction;
    let rows = app.audit_rows().await;
    assert_eq!(
        rows,
        [
            (AuditAction::KycApproved, "kyc_submission".to_owned(), None),
            (
                AuditAction::KycRejected,
                "kyc_submission".to_owned(),
                Some("blurry".to_owned())
            ),
            (
                AuditAction::KycRejected,
                "kyc_submission".to_owned(),
                Some("expired".to_owned())
            ),
        ]
    );
    let _ = worker_id;
}

#[tokio::test]
async fn an_oversized_non_document_is_415_not_413() {
    let app = TestApp::spawn_with(&[("UPLOAD_MAX_BYTES", "1024")]).await;
    let (_, worker) = app.user("big-html@example.com", "worker").await;
    let mut html = b"<html>".to_vec();
    html.resize(4000, b'a');
    let reply = app
        .upload_document(&worker.access, "passport", "x.pdf", "application/pdf", html)
        .await;
    reply.assert_problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn pending_submissions_are_capped() {
    let app = TestApp::spawn().await;
    let (_, worker) = app.user("many@example.com", "worker").await;
    for _ in 0..5 {
        app.submit_kyc(&worker.access).await;
    }
    let sixth = app
        .upload_document(
            &worker.access,
            "passport",
            "x.pdf",
            "application/pdf",
            PDF.to_vec(),
        )
        .await;
    sixth.assert_problem(409, "kyc_too_many_pending");
    assert_eq!(submissions(&app).await, 5);
    assert_eq!(
        files_in(&app.settings.upload_dir).len(),
        5,
        "the refused file was removed"
    );
    // Refused before the body is read: even a body that is not a form gets the 409.
    let response = app
        .client
        .post(app.url("/api/v1/workers/me/kyc"))
        .bearer_auth(&worker.access)
        .header("content-type", "multipart/form-data; boundary=x")
        .body(vec![b'z'; 1024 * 1024])
        .send()
        .await
        .expect("upload");
    crate::common::Reply::from(response)
        .await
        .assert_problem(409, "kyc_too_many_pending");
}

#[tokio::test]
async fn uploads_are_limited_per_address_before_any_byte_is_stored() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_UPLOADS_PER_HOUR", "2")]).await;
    // Fresh accounts do not get fresh budgets: the address is what counts.
    for n in 0..2 {
        let (_, worker) = app.user(&format!("w{n}@example.com"), "worker").await;
        app.submit_kyc(&worker.access).await;
    }
    let (_, third) = app.user("w2@example.com", "worker").await;
    let reply = app
        .upload_document(
            &third.access,
            "passport",
            "x.pdf",
            "application/pdf",
            PDF.to_vec(),
        )
        .await;
    reply.assert_problem(429, "rate_limited");
    assert!(reply.header("retry-after").is_some());
    assert_eq!(files_in(&app.settings.upload_dir).len(), 2);
}

#[tokio::test]
async fn files_of_rejected_submissions_are_deleted_after_the_retention_period() {
    let app = TestApp::spawn_with(&[("KYC_REJECTED_RETENTION", "1")]).await;
    let (_, admin) = app.admin("retention-admin@example.com").await;
    let (_, worker) = app.user("retention@example.com", "worker").await;
    let rejected = app.submit_kyc(&worker.access).await;
    let kept = app.submit_kyc(&worker.access).await;
    let reply = app
        .post(
            &format!("/api/v1/admin/kyc/{rejected}/reject"),
            Some(&admin.access),
            json!({"reason": "blurry"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        marketplace::worker::kyc::purge_rejected_files(&app.state, 100)
            .await
            .expect("purge"),
        0,
        "not before the retention period"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        marketplace::worker::kyc::purge_rejected_files(&app.state, 100)
            .await
            .expect("purge"),
        1
    );
    assert_eq!(
        files_in(&app.settings.upload_dir).len(),
        1,
        "only the pending file"
    );
    app.get(&format!("/api/v1/kyc/{rejected}/file"), Some(&admin.access))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        app.get(&format!("/api/v1/kyc/{kept}/file"), Some(&admin.access))
            .await
            .status,
        StatusCode::OK
    );
    // The record of the decision stays.
    let mine = app
        .get("/api/v1/workers/me/kyc", Some(&worker.access))
        .await;
    assert_eq!(mine.json["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        marketplace::worker::kyc::purge_rejected_files(&app.state, 100)
            .await
            .expect("purge"),
        0
    );
}

#[tokio::test]
async fn uploads_stop_before_the_disk_runs_low() {
    let app = TestApp::spawn_with(&[("UPLOAD_MIN_FREE_BYTES", "1000000000000000000")]).await;
    let (_, worker) = app.user("full-disk@example.com", "worker").await;
    app.upload_document(
        &worker.access,
        "passport",
        "x.pdf",
        "application/pdf",
        PDF.to_vec(),
    )
    .await
    .assert_problem(503, "dependency_unavailable");
    assert!(files_in(&app.settings.upload_dir).is_empty());
    assert_eq!(submissions(&app).await, 0);
}
