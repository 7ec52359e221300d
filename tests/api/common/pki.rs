//! A CA generated per test and server certificates it signs, for the servers the tests
//! start with TLS on (PostgreSQL, Redis, SMTP).

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA and a server certificate it signed for `localhost` and `127.0.0.1`.
pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

pub fn new_ca() -> (CertificateParams, KeyPair, String) {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "marketplace test CA");
    let key = KeyPair::generate().expect("ca key");
    let cert = params.self_signed(&key).expect("ca cert");
    (params, key, cert.pem())
}

pub fn pki() -> Pki {
    let (ca_params, ca_key, ca_pem) = new_ca();
    let issuer = Issuer::new(ca_params, ca_key);
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params");
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, &issuer).expect("server cert");
    Pki {
        ca_pem,
        server_cert_pem: cert.pem(),
        server_key_pem: key.serialize_pem(),
    }
}

/// Writes `pem` to a file of this test's own and returns its path.
pub fn pem_file(name: &str, pem: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("mpt-{}-{name}", std::process::id()));
    std::fs::write(&path, pem).expect("write pem");
    path
}
