//! HTTPS for the mock. Real providers are only reachable over TLS and pick HTTP/2 or HTTP/1.1 by ALPN, so a
//! proxy pointed at a plain-HTTP mock exercises a different upstream client path than in production. With
//! `[tls] enabled = true` (or `--tls`) the mock serves HTTPS on its one listener, offering `h2` and
//! `http/1.1` by ALPN, with either a certificate chain from files or one generated at start: a throwaway CA
//! signs a leaf for `127.0.0.1`, `::1` and `localhost`, and the CA certificate is written as PEM so clients
//! can trust it without trusting anything else. `alpn` narrows the offer (e.g. to `http/1.1` only, as an
//! HTTP/1.1-only front end), so a proxy's HTTP/1.1-over-TLS path can be tested even when it prefers HTTP/2.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An application protocol the mock can offer by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlpnProtocol {
    /// HTTP/2.
    #[serde(rename = "h2")]
    H2,
    /// HTTP/1.1.
    #[serde(rename = "http/1.1")]
    Http11,
}

impl AlpnProtocol {
    /// The protocol's ALPN identifier.
    pub fn id(self) -> &'static [u8] {
        match self {
            AlpnProtocol::H2 => b"h2",
            AlpnProtocol::Http11 => b"http/1.1",
        }
    }
}

/// ALPN protocols offered by default, in the server's order of preference (what the providers offer).
pub const DEFAULT_ALPN: [AlpnProtocol; 2] = [AlpnProtocol::H2, AlpnProtocol::Http11];

/// Names the generated leaf certificate is valid for.
pub const GENERATED_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// The `[tls]` table of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Serve HTTPS instead of plain HTTP.
    pub enabled: bool,
    /// PEM certificate chain to serve (leaf first); unset = generate a CA and a leaf at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`'s leaf (required with `cert_file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Where the generated CA certificate is written (PEM); unset = a file in a temporary directory that is
    /// removed when the mock stops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_out: Option<PathBuf>,
    /// Protocols offered by ALPN, preferred first (default `["h2", "http/1.1"]`). A client whose ALPN offer
    /// shares none of them fails the handshake (`no_application_protocol`), as with a real front end; a client
    /// that offers no ALPN gets HTTP/1.1.
    pub alpn: Vec<AlpnProtocol>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            enabled: false,
            cert_file: None,
            key_file: None,
            ca_out: None,
            alpn: DEFAULT_ALPN.to_vec(),
        }
    }
}

impl TlsConfig {
    /// Check the table on its own; returns (field path, problem).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let set_fields = [
            ("tls.cert_file", self.cert_file.is_some()),
            ("tls.key_file", self.key_file.is_some()),
            ("tls.ca_out", self.ca_out.is_some()),
            ("tls.alpn", self.alpn != DEFAULT_ALPN),
        ];
        if !self.enabled {
            if let Some((field, _)) = set_fields.iter().find(|(_, set)| *set) {
                return Err((
                    (*field).into(),
                    "is set but TLS is off: add `enabled = true` to [tls] (or pass --tls)".into(),
                ));
            }
            return Ok(());
        }
        if self.alpn.is_empty() {
            return Err((
                "tls.alpn".into(),
                "offers no protocol: list \"h2\", \"http/1.1\" or both".into(),
            ));
        }
        if let Some(twice) = self
            .alpn
            .iter()
            .enumerate()
            .find_map(|(i, p)| self.alpn[..i].contains(p).then_some(p))
        {
            return Err((
                "tls.alpn".into(),
                format!("lists {:?} twice", String::from_utf8_lossy(twice.id())),
            ));
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => Err((
                "tls.key_file".into(),
                "is required with `tls.cert_file` (the PEM private key of its leaf)".into(),
            )),
            (None, Some(_)) => Err((
                "tls.cert_file".into(),
                "is required with `tls.key_file` (the PEM certificate chain, leaf first)".into(),
            )),
            (Some(_), Some(_)) if self.ca_out.is_some() => Err((
                "tls.ca_out".into(),
                "only applies to a generated certificate; with `tls.cert_file` the CA is yours already"
                    .into(),
            )),
            _ => Ok(()),
        }
    }
}

/// TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or holds no usable PEM item.
    #[error("field `{field}`: {path}: {problem}")]
    File {
        /// Config field that named the file.
        field: &'static str,
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The CA certificate could not be written.
    #[error("field `tls.ca_out`: cannot write the CA certificate to {path}: {source}")]
    WriteCa {
        /// Target path.
        path: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// Generating the certificates failed.
    #[error("cannot generate the TLS certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate and key (e.g. the key does not match the leaf).
    #[error("TLS certificate and key are unusable: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What a TLS-serving mock needs at run time: the server config and, for a generated certificate, where
/// its CA is.
pub struct TlsSetup {
    /// rustls server config with the configured ALPN protocols.
    pub(crate) server_config: Arc<rustls::ServerConfig>,
    ca: Option<GeneratedCa>,
}

/// The CA of a generated certificate: its PEM and the file it was written to.
struct GeneratedCa {
    pem: String,
    file: PathBuf,
    /// Holds the default temporary directory (removed on drop) when `ca_out` was not given.
    _dir: Option<tempfile::TempDir>,
}

impl TlsSetup {
    /// Build from a validated `[tls]` table with `enabled = true`: load the files, or generate a CA and a
    /// leaf and write the CA's PEM.
    pub fn prepare(config: &TlsConfig) -> Result<TlsSetup, TlsError> {
        let (chain, key, ca) = match (&config.cert_file, &config.key_file) {
            (Some(cert_file), Some(key_file)) => {
                let (chain, key) = load_files(cert_file, key_file)?;
                (chain, key, None)
            }
            _ => {
                let generated = generate()?;
                let ca = write_ca(generated.ca_pem, config.ca_out.as_deref())?;
                (generated.chain, generated.key, Some(ca))
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        server_config.alpn_protocols = config.alpn.iter().map(|p| p.id().to_vec()).collect();
        Ok(TlsSetup {
            server_config: Arc::new(server_config),
            ca,
        })
    }

    /// An acceptor for this config (cheap: shares the config).
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.server_config))
    }

    /// The generated CA certificate's file (None when serving given files).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_ref().map(|ca| ca.file.as_path())
    }

    /// The generated CA certificate as PEM (None when serving given files).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|ca| ca.pem.as_str())
    }
}

/// A generated leaf chain (leaf, CA) with its key, and the CA as PEM.
struct Generated {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    ca_pem: String,
}

fn generate() -> Result<Generated, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mock-upstream test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate()?;
    let names: Vec<String> = GENERATED_NAMES
        .iter()
        .map(|name| name.to_string())
        .collect();
    let mut leaf_params = CertificateParams::new(names)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "mock-upstream");
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;
    Ok(Generated {
        chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        key: PrivateKeyDer::try_from(leaf_key.serialize_der())
            .map_err(|_| rcgen::Error::PemError("generated key is not PKCS#8".to_string()))?,
        ca_pem: ca_cert.pem(),
    })
}

fn write_ca(pem: String, ca_out: Option<&Path>) -> Result<GeneratedCa, TlsError> {
    let write_error = |path: &Path, source| TlsError::WriteCa {
        path: path.display().to_string(),
        source,
    };
    let (file, dir) = match ca_out {
        Some(path) => (path.to_path_buf(), None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("mock-upstream-tls-")
                .tempdir()
                .map_err(|source| write_error(&std::env::temp_dir(), source))?;
            (dir.path().join("ca.pem"), Some(dir))
        }
    };
    std::fs::write(&file, &pem).map_err(|source| write_error(&file, source))?;
    Ok(GeneratedCa {
        pem,
        file,
        _dir: dir,
    })
}

fn load_files(
    cert_file: &Path,
    key_file: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let file_error = |field, path: &Path, problem: String| TlsError::File {
        field,
        path: path.display().to_string(),
        problem,
    };
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|err| file_error("tls.cert_file", cert_file, err.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(
            "tls.cert_file",
            cert_file,
            "no PEM CERTIFICATE in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|err| file_error("tls.key_file", key_file, err.to_string()))?;
    Ok((chain, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_errors_name_the_field() {
        let path = |p: &str| Some(PathBuf::from(p));
        let cases = [
            (TlsConfig::default(), None),
            (
                TlsConfig {
                    enabled: true,
                    ..Default::default()
                },
                None,
            ),
            (
                TlsConfig {
                    enabled: true,
                    ca_out: path("/tmp/ca.pem"),
                    ..Default::default()
                },
                None,
            ),
            (
                TlsConfig {
                    enabled: true,
                    cert_file: path("c.pem"),
                    key_file: path("k.pem"),
                    ..Default::default()
                },
                None,
            ),
            (
                TlsConfig {
                    ca_out: path("/tmp/ca.pem"),
                    ..Default::default()
                },
                Some(("tls.ca_out", "TLS is off")),
            ),
            (
                TlsConfig {
                    enabled: true,
                    cert_file: path("c.pem"),
                    ..Default::default()
                },
                Some(("tls.key_file", "is required with `tls.cert_file`")),
            ),
            (
                TlsConfig {
                    enabled: true,
                    key_file: path("k.pem"),
                    ..Default::default()
                },
                Some(("tls.cert_file", "is required with `tls.key_file`")),
            ),
            (
                TlsConfig {
                    enabled: true,
                    cert_file: path("c.pem"),
                    key_file: path("k.pem"),
                    ca_out: path("ca.pem"),
                    ..Default::default()
                },
                Some(("tls.ca_out", "only applies to a generated certificate")),
            ),
            (
                TlsConfig {
                    enabled: true,
                    alpn: vec![AlpnProtocol::Http11],
                    ..Default::default()
                },
                None,
            ),
            (
                TlsConfig {
                    alpn: vec![AlpnProtocol::Http11],
                    ..Default::default()
                },
                Some(("tls.alpn", "TLS is off")),
            ),
            (
                TlsConfig {
                    enabled: true,
                    alpn: vec![],
                    ..Default::default()
                },
                Some(("tls.alpn", "offers no protocol")),
            ),
            (
                TlsConfig {
                    enabled: true,
                    alpn: vec![AlpnProtocol::H2, AlpnProtocol::Http11, AlpnProtocol::H2],
                    ..Default::default()
                },
                Some(("tls.alpn", "lists \"h2\" twice")),
            ),
        ];
        for (config, expected) in cases {
            match (config.validate(), expected) {
                (Ok(()), None) => {}
                (Err((field, problem)), Some((want_field, want_problem))) => {
                    assert_eq!(field, want_field, "{config:?}");
                    assert!(problem.contains(want_problem), "{config:?}: {problem}");
                }
                (got, want) => panic!("{config:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn generated_ca_is_written_and_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let ca_out = dir.path().join("ca.pem");
        let setup = TlsSetup::prepare(&TlsConfig {
            enabled: true,
            ca_out: Some(ca_out.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(setup.ca_file(), Some(ca_out.as_path()));
        let written = std::fs::read_to_string(&ca_out).unwrap();
        assert!(
            written.starts_with("-----BEGIN CERTIFICATE-----"),
            "{written}"
        );
        assert_eq!(setup.ca_pem(), Some(written.as_str()));
        assert_eq!(
            setup.server_config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );

        let default_file = {
            let setup = TlsSetup::prepare(&TlsConfig {
                enabled: true,
                ..Default::default()
            })
            .unwrap();
            let file = setup.ca_file().unwrap().to_path_buf();
            assert!(file.exists());
            file
        };
        assert!(
            !default_file.exists(),
            "temporary CA removed with the setup"
        );
    }

    #[test]
    fn unusable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let cases = [
            (&missing, &empty, "field `tls.cert_file`: "),
            (&empty, &empty, "no PEM CERTIFICATE"),
        ];
        for (cert, key, expected) in cases {
            let err = TlsSetup::prepare(&TlsConfig {
                enabled: true,
                cert_file: Some(cert.clone()),
                key_file: Some(key.clone()),
                ..Default::default()
            })
            .err()
            .expect("unusable files fail");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
