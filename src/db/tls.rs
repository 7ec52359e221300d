//! TLS to PostgreSQL, configured as libpq does it: `sslmode` and `sslrootcert` in
//! `DATABASE_URL`.
//!
//! tokio-postgres knows neither `verify-full` nor `sslrootcert`, so [`PgTls::take_from`]
//! takes both out of the URL at start-up, and [`PgConnector`] opens every connection
//! (pools, migrations, the event listener) through rustls accordingly.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use tokio_postgres_rustls::MakeRustlsConnect;
use url::Url;

/// How connections to PostgreSQL are secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgTls {
    /// Plain TCP: `sslmode=disable`, or no `sslmode` (a database on the same host).
    Disable,
    /// Encrypted, the server's certificate not checked (libpq's `require`): stops
    /// passive eavesdropping only. Managed databases that publish no CA need it.
    Require,
    /// Encrypted, the certificate chain checked against `sslrootcert` (the system's
    /// roots when absent) and its name against the URL's host.
    VerifyFull { root_cert: Option<PathBuf> },
}

impl PgTls {
    /// Removes `sslmode` and `sslrootcert` from `url`'s query and returns what they ask
    /// for, or the form expected.
    pub fn take_from(url: &mut Url) -> Result<Self, &'static str> {
        let mut mode = None;
        let mut root_cert = None;
        let mut rest = Vec::new();
        for (key, value) in url.query_pairs() {
            match &*key {
                "sslmode" => mode = Some(value.into_owned()),
                "sslrootcert" => root_cert = Some(PathBuf::from(&*value)),
                _ => rest.push(format!("{}={}", encode_query(&key), encode_query(&value))),
            }
        }
        let tls = match (mode.as_deref(), root_cert) {
            (None | Some("disable"), None) => Self::Disable,
            (Some("require"), None) => Self::Require,
            (Some("verify-full"), root_cert) => Self::VerifyFull { root_cert },
            (_, Some(_)) => return Err("sslrootcert only with sslmode=verify-full"),
            _ => return Err("sslmode=disable, require or verify-full"),
        };
        url.set_query((!rest.is_empty()).then(|| rest.join("&")).as_deref());
        Ok(tls)
    }
}

/// Percent-encodes a query key or value the way libpq-style parsers read it back
/// (`%20` for spaces, never `+`).
fn encode_query(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Opens PostgreSQL connections with the configured TLS. Built once at start-up, so a
/// missing or unreadable `sslrootcert` stops the process instead of failing every
/// connection later.
#[derive(Clone)]
pub struct PgConnector(Option<MakeRustlsConnect>);

impl PgConnector {
    pub fn new(tls: &PgTls) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let config = match tls {
            PgTls::Disable => return Ok(Self(None)),
            PgTls::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
            PgTls::VerifyFull { root_cert } => builder
                .with_root_certificates(root_store(root_cert.as_ref())?)
                .with_no_client_auth(),
        };
        Ok(Self(Some(MakeRustlsConnect::new(config))))
    }

    /// Connects to `url` (whose query holds no `sslmode`/`sslrootcert` any more).
    pub async fn connect(&self, url: &str) -> Result<AsyncPgConnection, ConnectionError> {
        use diesel_async::AsyncConnection;
        let Some(tls) = &self.0 else {
            return AsyncPgConnection::establish(url).await;
        };
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|err: tokio_postgres::Error| {
                ConnectionError::BadConnection(err.to_string())
            })?;
        config.ssl_mode(tokio_postgres::config::SslMode::Require);
        let (client, connection) = config
            .connect(tls.clone())
            .await
            .map_err(|err| ConnectionError::BadConnection(with_causes(&err)))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }
}

/// An error and its causes on one line: tokio-postgres says only "error performing TLS
/// handshake", the reason (an unknown issuer, a wrong host name) is in its source.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The CAs `verify-full` trusts: those in the `sslrootcert` PEM file, or the system's.
fn root_store(root_cert: Option<&PathBuf>) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("reading sslrootcert {}", path.display()))?
            {
                roots.add(cert.with_context(|| format!("parsing {}", path.display()))?)?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system bundle may hold certificates rustls cannot use; skip those.
                let _ = roots.add(cert);
            }
        }
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "no CA certificate to verify PostgreSQL with"
    );
    Ok(roots)
}

/// `sslmode=require`: the handshake's signatures are checked (the channel is really
/// encrypted with the key the server holds), the certificate's issuer and name are not,
/// exactly as libpq does for this mode.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(url: &str) -> (Result<PgTls, &'static str>, String) {
        let mut url: Url = url.parse().expect("url");
        let tls = PgTls::take_from(&mut url);
        (tls, url.to_string())
    }

    #[test]
    fn sslmode_and_sslrootcert_leave_the_url() {
        let (tls, rest) = take(
            "postgres://u@db/x?sslmode=verify-full&sslrootcert=/etc/ca.pem&options=-c%20a%3Db",
        );
        assert_eq!(
            tls,
            Ok(PgTls::VerifyFull {
                root_cert: Some("/etc/ca.pem".into())
            })
        );
        assert_eq!(rest, "postgres://u@db/x?options=-c%20a%3Db");
        assert_eq!(
            take("postgres://u@db/x?sslmode=require").0,
            Ok(PgTls::Require)
        );
        assert_eq!(take("postgres://u@db/x").0, Ok(PgTls::Disable));
        assert_eq!(take("postgres://u@db/x").1, "postgres://u@db/x");
    }

    #[test]
    fn weaker_or_unknown_modes_are_refused() {
        for url in [
            "postgres://db/x?sslmode=prefer",
            "postgres://db/x?sslmode=verify-ca",
            "postgres://db/x?sslmode=require&sslrootcert=/ca.pem",
            "postgres://db/x?sslrootcert=/ca.pem",
        ] {
            assert!(take(url).0.is_err(), "{url}");
        }
    }

    #[test]
    fn a_missing_root_certificate_stops_start_up() {
        let tls = PgTls::VerifyFull {
            root_cert: Some("/nonexistent/ca.pem".into()),
        };
        assert!(PgConnector::new(&tls).is_err());
    }
}
