//! HTTPS to the upstream. Real providers are reached over TLS and pick HTTP/2 or HTTP/1.1 by ALPN, so the
//! proxy offers both (`h2` first) and speaks whichever the upstream chose. Only the CA given with
//! `--upstream-ca` is trusted: the proxy runs against test upstreams (mock-upstream generates its own CA), and
//! trusting nothing else keeps a misconfigured run from silently reaching a real provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// ALPN protocols offered to the upstream, preferred first.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why the upstream CA cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read.
    #[error("--upstream-ca {path}: cannot read it: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA file holds no usable PEM certificate.
    #[error("--upstream-ca {path}: {problem}")]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// rustls refused the configuration.
    #[error("--upstream-ca {path}: {source}")]
    Rustls {
        /// The file.
        path: PathBuf,
        /// The rustls error.
        source: rustls::Error,
    },
}

/// A rustls client config trusting only the PEM certificates in `ca_file`, offering `h2` and `http/1.1`.
pub fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let text = std::fs::read(ca_file).map_err(|source| TlsError::Unreadable {
        path: ca_file.to_path_buf(),
        source,
    })?;
    let not_pem = |problem: String| TlsError::NotPem {
        path: ca_file.to_path_buf(),
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_pem(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(not_pem("holds no PEM certificate".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| not_pem(format!("unusable certificate: {e}")))?;
    }
    let rustls_err = |source| TlsError::Rustls {
        path: ca_file.to_path_buf(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn bad_ca_files_are_named() {
        let empty = tempfile::NamedTempFile::new().unwrap();
        let mut garbage = tempfile::NamedTempFile::new().unwrap();
        garbage.write_all(b"not a certificate\n").unwrap();
        let missing = Path::new("/nonexistent/ca.pem");
        let cases = [
            (missing, "cannot read it"),
            (empty.path(), "holds no PEM certificate"),
            (garbage.path(), "holds no PEM certificate"),
        ];
        for (path, want) in cases {
            let message = client_config(path).unwrap_err().to_string();
            assert!(message.contains(want), "{}: {message}", path.display());
            assert!(message.contains(&path.display().to_string()), "{message}");
        }
    }
}
