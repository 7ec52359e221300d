//! The console's HTML, as maud templates compiled into the binary. maud escapes every
//! interpolated value, so text from users (names, reasons, reviews) cannot become markup.
//!
//! No page has a script or an inline style: the Content-Security-Policy forbids both.
//! Forms post to the console and carry the session's CSRF token.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use crate::{
    admin::schemas::Stats,
    audit::AuditEntry,
    auth::schemas::User,
    console::session::{ConsoleAdmin, Notice},
    core::{ids::UserId, pagination::Page, upload::FileKind},
    db::enums::{KycDecision, KycStatus, ServiceStatus, UserRole, UserStatus},
    review::services::Moderated,
    service::schemas::Service,
    worker::{kyc::ForReview, schemas::KycSubmission},
};

/// Which section of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Kyc,
    Users,
    Listings,
    Reviews,
    Audit,
}

const NAV: [(Section, &str, &str); 6] = [
    (Section::Dashboard, "/admin/", "Dashboard"),
    (Section::Kyc, "/admin/kyc", "KYC"),
    (Section::Users, "/admin/users", "Users"),
    (Section::Listings, "/admin/listings", "Listings"),
    (Section::Reviews, "/admin/reviews", "Reviews"),
    (Section::Audit, "/admin/audit", "Audit log"),
];

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn email_of(emails: &HashMap<UserId, String>, id: UserId) -> String {
    emails.get(&id).cloned().unwrap_or_else(|| id.to_string())
}

/// The document every page shares: head, navigation (when signed in), the notice of
/// the last action, then the page.
fn layout(title: &str, admin: Option<(&ConsoleAdmin, Section)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · marketplace console" }
                link rel="stylesheet" href="/admin/assets/console.css";
                link rel="icon" href="/admin/assets/favicon.svg" type="image/svg+xml";
            }
            body {
                header.top {
                    span.brand { "marketplace console" }
                    @if let Some((admin, current)) = admin {
                        nav aria-label="Console" {
                            @for (section, href, label) in NAV {
                                @if section == current {
                                    a href=(href) aria-current="page" { (label) }
                                } @else {
                                    a href=(href) { (label) }
                                }
                            }
                        }
                        form.signout method="post" action="/admin/logout" {
                            (csrf(&admin.csrf))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    @if let Some((admin, _)) = admin {
                        @if let Some(notice) = &admin.notice {
                            (notice_box(notice))
                        }
                    }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn notice_box(notice: &Notice) -> Markup {
    html! {
        @if notice.ok {
            p.notice.ok role="status" { (notice.text) }
        } @else {
            p.notice.error role="alert" { (notice.text) }
        }
    }
}

fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A link to the next page of a list, keeping its filters.
fn next_link(base: &str, filters: &[(&str, &str)], next: Option<&str>) -> Markup {
    let Some(cursor) = next else {
        return html! {};
    };
    let mut pairs: Vec<(&str, &str)> = filters
        .iter()
        .copied()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    pairs.push(("cursor", cursor));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    html! { p.pager { a href={ (base) "?" (query) } { "Next page →" } } }
}

/// A one-button form, with an optional required reason.
fn action(admin: &ConsoleAdmin, url: &str, label: &str, reason_id: Option<&str>) -> Markup {
    html! {
        form.action method="post" action=(url) {
            (csrf(&admin.csrf))
            @if let Some(id) = reason_id {
                label for=(id) { "Reason" }
                input id=(id) name="reason" type="text" required maxlength="1000";
            }
            button type="submit" { (label) }
        }
    }
}

pub fn login(email: &str, token: &str, notice: Option<&Notice>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            @if let Some(notice) = notice {
                (notice_box(notice))
            }
            form.login method="post" action="/admin/login" {
                input type="hidden" name="csrf" value=(token);
                label for="email" { "Email" }
                input id="email" name="email" type="email" required autocomplete="username" value=(email);
                label for="password" { "Password" }
                input id="password" name="password" type="password" required autocomplete="current-password";
                button type="submit" { "Sign in" }
            }
            p.hint { "For admins only. Accounts are created with " code { "marketplace create-admin" } "." }
        },
    )
}

pub fn error(status: u16, detail: &str) -> Markup {
    layout(
        "Something went wrong",
        None,
        html! {
            p.notice.error role="alert" { (status) ": " (detail) }
            p { a href="/admin/" { "Back to the dashboard" } }
        },
    )
}

pub fn dashboard(admin: &ConsoleAdmin, stats: &Stats) -> Markup {
    let users = &stats.users_by_role;
    let jobs = &stats.jobs_by_status;
    layout(
        "Dashboard",
        Some((admin, Section::Dashboard)),
        html! {
            section.cards {
                a.card href="/admin/kyc" {
                    span.figure { (stats.pending_kyc) }
                    span { "KYC submissions awaiting review" }
                }
                div.card {
                    span.figure { (stats.services_active) }
                    span { "active listings" }
                }
            }
            h2 { "Users by role" }
            table {
                thead { tr { th { "client" } th { "worker" } th { "admin" } } }
                tbody { tr { td { (users.client) } td { (users.worker) } td { (users.admin) } } }
            }
            h2 { "Jobs by status" }
            table {
                thead { tr {
                    th { "requested" } th { "accepted" } th { "declined" } th { "in progress" }
                    th { "completed" } th { "cancelled" } th { "expired" }
                } }
                tbody { tr {
                    td { (jobs.requested) } td { (jobs.accepted) } td { (jobs.declined) }
                    td { (jobs.in_progress) } td { (jobs.completed) } td { (jobs.cancelled) }
                    td { (jobs.expired) }
                } }
            }
        },
    )
}

fn document_type(submission: &KycSubmission) -> &'static str {
    submission.document_type.as_str()
}

pub fn kyc_queue(
    admin: &ConsoleAdmin,
    page: &Page<KycSubmission>,
    emails: &HashMap<UserId, String>,
) -> Markup {
    layout(
        "KYC",
        Some((admin, Section::Kyc)),
        html! {
            p.hint { "Submissions awaiting review, oldest first." }
            @if page.items.is_empty() {
                p.empty { "Nothing awaits review." }
            } @else {
                table {
                    thead { tr { th { "Submitted" } th { "Worker" } th { "Document" } th { "File" } th {} } }
                    tbody {
                        @for s in &page.items {
                            tr {
                                td.when { (time(s.created_at)) }
                                td { (email_of(emails, s.worker_id)) }
                                td { (document_type(s)) }
                                td { (s.content_type) ", " (s.size_bytes / 1024) " KiB" }
                                td { a href={ "/admin/kyc/" (s.id) } { "Review" } }
                            }
                        }
                    }
                }
            }
            (next_link("/admin/kyc", &[], page.next_cursor.as_deref()))
        },
    )
}

pub fn kyc_review(admin: &ConsoleAdmin, review: &ForReview, worker: &User) -> Markup {
    let s = &review.submission;
    let document = format!("/admin/kyc/{}/document", s.id);
    layout(
        "KYC review",
        Some((admin, Section::Kyc)),
        html! {
            dl.facts {
                dt { "Worker" } dd { (worker.full_name) " <" (worker.email) ">" }
                dt { "Worker's KYC status" } dd { (review.worker_status.as_str()) }
                dt { "Document" } dd { (document_type(s)) }
                dt { "Submitted" } dd { (time(s.created_at)) }
                dt { "File" } dd { (s.content_type) ", " (s.size_bytes) " bytes, sha256 " code { (s.sha256) } }
                dt { "Status" } dd { (s.status.as_str()) }
                @if let Some(reason) = &s.reason {
                    dt { "Reason" } dd { (reason) }
                }
            }
            div.document {
                @if FileKind::from_content_type(&s.content_type) == Some(FileKind::Pdf) {
                    iframe src=(document) title="The submitted document" sandbox="" {}
                    p.hint {
                        "PDFs are shown in a sandboxed frame, where some browsers (headless "
                        "Chromium among them) run no PDF viewer. If the frame stays empty, "
                        "download the file."
                    }
                } @else {
                    img src=(document) alt="The submitted document";
                }
                p { a href=(document) download { "Download the file" } }
            }
            @if s.status == KycDecision::Pending {
                section.decision {
                    form.action method="post" action={ "/admin/kyc/" (s.id) "/approve" } {
                        (csrf(&admin.csrf))
                        button type="submit" { "Approve" }
                    }
                    form.action method="post" action={ "/admin/kyc/" (s.id) "/reject" } {
                        (csrf(&admin.csrf))
                        @if review.worker_status == KycStatus::Approved {
                            p.notice.warning role="note" {
                                "This worker is approved. Rejecting takes the approval away: "
                                "their listings leave search until another submission is approved."
                            }
                        }
                        label for="reason" { "Reason" }
                        input id="reason" name="reason" type="text" required maxlength="1000";
                        button.danger type="submit" { "Reject" }
                    }
                }
            } @else {
                p.hint { "This submission has been reviewed." }
            }
        },
    )
}

/// The values of the users page's filters, echoed into its form and pager.
pub struct UserFilters<'a> {
    pub q: &'a str,
    pub role: Option<UserRole>,
    pub status: Option<UserStatus>,
}

pub fn users(admin: &ConsoleAdmin, page: &Page<User>, filters: &UserFilters<'_>) -> Markup {
    let role = filters.role.map_or("", UserRole::as_str);
    let status = filters.status.map_or("", UserStatus::as_str);
    layout(
        "Users",
        Some((admin, Section::Users)),
        html! {
            form.filters method="get" action="/admin/users" {
                label for="q" { "Search" }
                input id="q" name="q" type="search" value=(filters.q) placeholder="email or name";
                label for="role" { "Role" }
                select id="role" name="role" {
                    @for (value, label) in [("", "any"), ("client", "client"), ("worker", "worker"), ("admin", "admin")] {
                        option value=(value) selected[value == role] { (label) }
                    }
                }
                label for="status" { "Status" }
                select id="status" name="status" {
                    @for (value, label) in [("", "any"), ("active", "active"), ("suspended", "suspended")] {
                        option value=(value) selected[value == status] { (label) }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if page.items.is_empty() {
                p.empty { "No user matches." }
            } @else {
                table {
                    thead { tr { th { "Email" } th { "Name" } th { "Role" } th { "Status" } th { "Joined" } th { "Action" } } }
                    tbody {
                        @for user in &page.items {
                            tr {
                                td { (user.email) }
                                td { (user.full_name) }
                                td { (user.role.as_str()) }
                                td { span class={ "badge " (user.status.as_str()) } { (user.status.as_str()) } }
                                td.when { (time(user.created_at)) }
                                td {
                                    @if user.id == admin.user.id {
                                        span.hint { "you" }
                                    } @else if user.status == UserStatus::Suspended {
                                        (action(admin, &format!("/admin/users/{}/reinstate", user.id), "Reinstate", None))
                                    } @else {
                                        (action(admin, &format!("/admin/users/{}/suspend", user.id), "Suspend", Some(&format!("reason-{}", user.id))))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (next_link("/admin/users", &[("q", filters.q), ("role", role), ("status", status)], page.next_cursor.as_deref()))
        },
    )
}

pub fn listings(
    admin: &ConsoleAdmin,
    page: &Page<Service>,
    emails: &HashMap<UserId, String>,
    q: &str,
    status: Option<ServiceStatus>,
) -> Markup {
    let status = status.map_or("", ServiceStatus::as_str);
    layout(
        "Listings",
        Some((admin, Section::Listings)),
        html! {
            form.filters method="get" action="/admin/listings" {
                label for="q" { "Find" }
                input id="q" name="q" type="search" value=(q) placeholder="title, listing id or worker id";
                label for="status" { "Status" }
                select id="status" name="status" {
                    @for (value, label) in [("", "any"), ("active", "active"), ("hidden", "hidden")] {
                        option value=(value) selected[value == status] { (label) }
                    }
                }
                button type="submit" { "Find" }
            }
            @if page.items.is_empty() {
                p.empty { "No listing matches." }
            } @else {
                table {
                    thead { tr { th { "Title" } th { "Worker" } th { "City" } th { "Price" } th { "Status" } th { "Action" } } }
                    tbody {
                        @for listing in &page.items {
                            tr {
                                td { (listing.title) br; span.hint { (listing.category) } }
                                td { (email_of(emails, listing.worker_id)) }
                                td { (listing.city) }
                                td { (format!("{:.2}", listing.price_cents as f64 / 100.0)) " / " (listing.pricing_unit.as_str()) }
                                td { span class={ "badge " (listing.status.as_str()) } { (listing.status.as_str()) } }
                                td {
                                    @if listing.status == ServiceStatus::Hidden {
                                        (action(admin, &format!("/admin/listings/{}/unhide", listing.id), "Unhide", None))
                                    } @else {
                                        (action(admin, &format!("/admin/listings/{}/hide", listing.id), "Hide", Some(&format!("reason-{}", listing.id))))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (next_link("/admin/listings", &[("q", q), ("status", status)], page.next_cursor.as_deref()))
        },
    )
}

pub fn reviews(
    admin: &ConsoleAdmin,
    page: &Page<Moderated>,
    emails: &HashMap<UserId, String>,
) -> Markup {
    layout(
        "Reviews",
        Some((admin, Section::Reviews)),
        html! {
            p.hint { "Every review, newest first. Hiding one removes it from public lists and ratings." }
            @if page.items.is_empty() {
                p.empty { "No reviews yet." }
            } @else {
                table {
                    thead { tr { th { "Posted" } th { "Rating" } th { "Comment" } th { "Client → worker" } th { "Action" } } }
                    tbody {
                        @for m in &page.items {
                            @let r = &m.review;
                            tr {
                                td.when { (time(r.created_at)) }
                                td { (r.rating) " / 5" }
                                td.comment { (r.comment) }
                                td { (email_of(emails, r.client_id)) " → " (email_of(emails, r.worker_id)) }
                                td {
                                    @if m.hidden {
                                        span.badge.hidden { "hidden" }
                                    } @else {
                                        (action(admin, &format!("/admin/reviews/{}/hide", r.id), "Hide", Some(&format!("reason-{}", r.id))))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (next_link("/admin/reviews", &[], page.next_cursor.as_deref()))
        },
    )
}

pub fn audit(
    admin: &ConsoleAdmin,
    page: &Page<AuditEntry>,
    emails: &HashMap<UserId, String>,
) -> Markup {
    layout(
        "Audit log",
        Some((admin, Section::Audit)),
        html! {
            p.hint { "Every moderation action, newest first." }
            @if page.items.is_empty() {
                p.empty { "No action yet." }
            } @else {
                table {
                    thead { tr { th { "When" } th { "Admin" } th { "Action" } th { "Target" } th { "Reason" } } }
                    tbody {
                        @for entry in &page.items {
                            tr {
                                td.when { (time(entry.at)) }
                                td { (email_of(emails, entry.actor_id)) }
                                td { (entry.action.as_str()) }
                                td {
                                    (entry.target_type) " "
                                    @if entry.target_type == "kyc_submission" {
                                        a href={ "/admin/kyc/" (entry.target_id) } { code { (entry.target_id) } }
                                    } @else {
                                        code { (entry.target_id) }
                                    }
                                }
                                td { (entry.reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            (next_link("/admin/audit", &[], page.next_cursor.as_deref()))
        },
    )
}
