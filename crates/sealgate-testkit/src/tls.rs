//! A throwaway certificate authority for tests.
//!
//! Every [`TestCa`] has a fresh ECDSA P-256 key, so certificates from two test
//! CAs never verify against each other. Leaf certificates carry DNS or IP
//! subject alternative names (a name that parses as an IP address becomes an
//! IP SAN), the server and client auth extended key usages, and an authority
//! key identifier, so strict verifiers (rustls-webpki, OpenSSL, Python `ssl`)
//! accept them.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate authority whose key lives only in memory.
pub struct TestCa {
    /// The CA certificate, PEM encoded.
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A leaf certificate issued by a [`TestCa`], with its private key.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The leaf certificate alone, PEM encoded.
    pub cert_pem: String,
    /// The leaf followed by the CA certificate: what a server presents.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8), PEM encoded.
    pub key_pem: String,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// Creates a CA named "Sealgate Test CA".
    pub fn new() -> Self {
        Self::named("Sealgate Test CA")
    }

    /// Creates a CA with the given common name.
    pub fn named(common_name: &str) -> Self {
        let key = KeyPair::generate().expect("generate test CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Sealgate tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign test CA");
        Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Issues a leaf certificate for `names` (DNS names or IP addresses);
    /// the first name is also the subject common name.
    pub fn issue(&self, names: &[&str]) -> Issued {
        self.issue_with(names, |_| {})
    }

    /// Like [`TestCa::issue`], but valid only during 2020: expired now.
    pub fn issue_expired(&self, names: &[&str]) -> Issued {
        self.issue_with(names, |params| {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        })
    }

    fn issue_with(&self, names: &[&str], adjust: impl FnOnce(&mut CertificateParams)) -> Issued {
        assert!(!names.is_empty(), "a certificate needs at least one name");
        let owned: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(owned).expect("valid subject alternative names");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        adjust(&mut params);
        let key = KeyPair::generate().expect("generate leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign leaf certificate");
        let cert_pem = cert.pem();
        Issued {
            chain_pem: format!("{cert_pem}{}", self.cert_pem),
            cert_pem,
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the CA certificate to `dir/ca.pem` and returns that path.
    pub fn write_to(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        fs::write(&path, &self.cert_pem).expect("write ca.pem");
        path
    }

    /// The CA certificate in DER form.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("parse own CA PEM")
    }

    /// The CA's issuer (name and key), for other test kit modules that issue
    /// certificates or revocation lists.
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// A rustls client configuration that trusts only this CA.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.cert_der())
            .expect("add test CA to root store");
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth()
    }
}

impl Issued {
    /// Writes `dir/<name>.pem` (the chain: leaf then CA) and `dir/<name>.key`
    /// and returns `(cert_path, key_path)`.
    pub fn write_to(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert_path = dir.join(format!("{name}.pem"));
        let key_path = dir.join(format!("{name}.key"));
        fs::write(&cert_path, &self.chain_pem).expect("write certificate chain");
        fs::write(&key_path, &self.key_pem).expect("write private key");
        (cert_path, key_path)
    }

    /// The chain (leaf first) in DER form.
    pub fn chain_der(&self) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("parse own chain PEM")
    }

    /// The private key in DER form.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("parse own key PEM")
    }

    /// A rustls server configuration presenting this certificate chain.
    pub fn server_config(&self) -> rustls::ServerConfig {
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("default TLS versions")
            .with_no_client_auth()
            .with_single_cert(self.chain_der(), self.key_der())
            .expect("certificate matches key")
    }
}

/// The crypto provider, chosen explicitly so the result does not depend on
/// which rustls features other crates in the build enable.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::process::Command;

    /// Runs a TLS handshake in memory and returns the client's outcome.
    fn handshake(
        client: rustls::ClientConfig,
        server: rustls::ServerConfig,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let server_name =
            rustls::pki_types::ServerName::try_from(name.to_owned()).expect("valid server name");
        let mut c = rustls::ClientConnection::new(Arc::new(client), server_name)?;
        let mut s = rustls::ServerConnection::new(Arc::new(server))?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).expect("client write");
            if !buf.is_empty() {
                s.read_tls(&mut buf.as_slice()).expect("server read");
                // A server-side error is reported to the client as an alert.
                let _ = s.process_new_packets();
            }
            let mut buf = Vec::new();
            s.write_tls(&mut buf).expect("server write");
            if !buf.is_empty() {
                c.read_tls(&mut buf.as_slice()).expect("client read");
                c.process_new_packets()?;
            }
            if !c.is_handshaking() && !s.is_handshaking() {
                c.writer().write_all(b"ping").expect("write app data");
                let mut buf = Vec::new();
                c.write_tls(&mut buf).expect("client write");
                s.read_tls(&mut buf.as_slice()).expect("server read");
                s.process_new_packets().expect("server decrypt");
                let mut got = [0u8; 4];
                s.reader().read_exact(&mut got).expect("read app data");
                assert_eq!(&got, b"ping");
                return Ok(());
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn rustls_client_trusting_the_ca_accepts_an_issued_server_cert() {
        let ca = TestCa::new();
        let leaf = ca.issue(&["localhost", "mx1.example.test", "127.0.0.1"]);
        for name in ["localhost", "mx1.example.test", "127.0.0.1"] {
            handshake(ca.client_config(), leaf.server_config(), name)
                .unwrap_or_else(|e| panic!("handshake for {name}: {e}"));
        }
    }

    #[test]
    fn rustls_client_rejects_a_name_not_in_the_certificate() {
        let ca = TestCa::new();
        let leaf = ca.issue(&["mx1.example.test"]);
        let err = handshake(ca.client_config(), leaf.server_config(), "mx2.example.test")
            .expect_err("wrong name must fail");
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }

    #[test]
    fn rustls_client_rejects_a_certificate_from_another_ca() {
        let ours = TestCa::new();
        let theirs = TestCa::named("Somebody Else CA");
        let leaf = theirs.issue(&["mx1.example.test"]);
        let err = handshake(
            ours.client_config(),
            leaf.server_config(),
            "mx1.example.test",
        )
        .expect_err("unknown issuer must fail");
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }

    fn openssl_verify(dir: &Path, extra: &[&str]) -> std::process::Output {
        Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(dir.join("ca.pem"))
            .args(["-purpose", "sslserver", "-x509_strict"])
            .args(extra)
            .arg(dir.join("leaf.pem"))
            .output()
            .expect("run openssl (is it installed?)")
    }

    #[test]
    fn openssl_verifies_the_leaf_against_the_written_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new();
        let leaf = ca.issue(&["localhost", "mx1.example.test", "127.0.0.1"]);
        assert_eq!(ca.write_to(dir.path()), dir.path().join("ca.pem"));
        fs::write(dir.path().join("leaf.pem"), &leaf.cert_pem).expect("write leaf");

        for extra in [
            &[][..],
            &["-verify_hostname", "mx1.example.test"][..],
            &["-verify_ip", "127.0.0.1"][..],
        ] {
            let out = openssl_verify(dir.path(), extra);
            assert!(
                out.status.success(),
                "openssl verify {extra:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = openssl_verify(dir.path(), &["-verify_hostname", "other.example.test"]);
        assert!(!out.status.success(), "a name not in the SANs must fail");
    }

    #[test]
    fn written_files_hold_the_chain_and_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new();
        let leaf = ca.issue(&["mx1.example.test"]);
        let (cert, key) = leaf.write_to(dir.path(), "mx1");
        assert_eq!(cert, dir.path().join("mx1.pem"));
        assert_eq!(key, dir.path().join("mx1.key"));
        let chain = fs::read_to_string(&cert).expect("read chain");
        assert!(chain.starts_with(&leaf.cert_pem));
        assert!(chain.ends_with(&ca.cert_pem));
        assert_eq!(leaf.chain_der().len(), 2);
        let key_text = fs::read_to_string(&key).expect("read key");
        assert!(key_text.contains("PRIVATE KEY"));
    }
}
