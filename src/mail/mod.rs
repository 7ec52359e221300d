//! Outgoing email: SMTP through lettre (STARTTLS whenever the server offers it, and
//! required when `SMTP_URL` has credentials; the certificate verified against
//! `SMTP_CA_CERT` or the public web PKI), or,
//! with no `SMTP_URL` (development), one `.eml` file per email under `LOG_DIR/mail/`.
//!
//! Emails are sent by the event dispatcher, after the change that asked for them has
//! committed, and retried with its backoff until the server accepts them (see
//! [`send_email_for`](crate::auth::lifecycle::services::send_email_for)). Bodies come from templates compiled
//! into the binary ([`templates`]).

pub mod templates;

use std::time::Duration;

use anyhow::Context;

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, CertificateStore, Tls, TlsParameters},
    },
};

use crate::config::Settings;

/// How long one SMTP conversation may take: the dispatcher's round waits for it.
/// lettre's own timeout bounds only the connect, so [`Mailer::send`] bounds the whole
/// conversation with it too (a server that stops answering mid-way, e.g. after a
/// refused AUTH, stalled every later email before).
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One email, ready to send: plain text and HTML alternatives of the same message.
pub struct Email {
    pub to: Mailbox,
    pub subject: String,
    pub text: String,
    pub html: String,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// Sends emails from `MAIL_FROM` through the configured transport.
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl Mailer {
    /// The SMTP transport of `SMTP_URL` (connections are pooled and opened on first
    /// use), or the mail folder under `LOG_DIR`, created now.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let transport = match &settings.smtp {
            Some(smtp) => {
                let mut tls = TlsParameters::builder(smtp.host.clone());
                if let Some(path) = &smtp.ca_cert {
                    let pem = std::fs::read(path)
                        .with_context(|| format!("SMTP_CA_CERT {}", path.display()))?;
                    tls = tls
                        .certificate_store(CertificateStore::None)
                        .add_root_certificate(Certificate::from_pem(&pem)?);
                }
                let tls = tls.build()?;
                // With credentials, STARTTLS is required: someone in the path who strips
                // the server's STARTTLS offer must not get to read the password.
                let tls = match smtp.credentials {
                    Some(_) => Tls::Required(tls),
                    None => Tls::Opportunistic(tls),
                };
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                        .port(smtp.port)
                        .tls(tls)
                        .timeout(Some(SMTP_TIMEOUT));
                if let Some((user, password)) = &smtp.credentials {
                    builder = builder
                        .credentials(Credentials::new(user.clone(), password.expose().to_owned()));
                }
                Transport::Smtp(builder.build())
            }
            None => {
                let dir = std::path::Path::new(&settings.log_dir).join("mail");
                std::fs::create_dir_all(&dir)?;
                Transport::Files(AsyncFileTransport::new(dir))
            }
        };
        Ok(Self {
            from: settings.mail_from.clone(),
            transport,
        })
    }

    /// Hands `email` to the server (or writes its file). An error means it was not
    /// accepted and may be retried.
    pub async fn send(&self, email: Email) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(email.to)
            .subject(email.subject)
            .multipart(MultiPart::alternative_plain_html(email.text, email.html))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                tokio::time::timeout(SMTP_TIMEOUT, smtp.send(message))
                    .await
                    .with_context(|| {
                        format!("the SMTP server did not answer within {SMTP_TIMEOUT:?}")
                    })??;
            }
            Transport::Files(files) => {
                files.send(message).await?;
            }
        }
        Ok(())
    }
}
