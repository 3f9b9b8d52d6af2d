//! Who may call the gRPC services (SPEC §7): TLS on the listener (tonic's rustls) and a
//! bearer token every Admin, Data and reflection request must carry as
//! `authorization: Bearer <token>`. Health checks stay open, as load balancers probe them
//! without credentials. A request without the right token is refused with
//! `UNAUTHENTICATED` before any handler runs, so it changes nothing.

use std::path::Path;
use std::sync::Arc;

use tonic::transport::{Identity, ServerTlsConfig};
use tonic::{Request, Status};

use crate::error::ServerError;

/// Longest token accepted in a token file (a token is a secret, not a document).
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The token check, cloned into every protected service.
#[derive(Clone)]
pub struct TokenCheck {
    token: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCheck")
            .field("required", &self.token.is_some())
            .finish()
    }
}

impl TokenCheck {
    /// No token required.
    pub fn open() -> TokenCheck {
        TokenCheck { token: None }
    }

    /// Requires the token in `path`: its content without surrounding whitespace, which
    /// must be non-empty, at most [`MAX_TOKEN_BYTES`], and printable ASCII (a header value).
    ///
    /// # Errors
    /// [`ServerError::Config`] naming the file and what is wrong with it.
    pub fn from_file(path: &Path) -> Result<TokenCheck, ServerError> {
        let bad = |reason: String| ServerError::Config {
            what: format!("token file {}", path.display()),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.len() > MAX_TOKEN_BYTES as u64 + 64 {
            return Err(bad(format!("larger than {MAX_TOKEN_BYTES} bytes")));
        }
        let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let token = text.trim_ascii();
        if token.is_empty() {
            return Err(bad("empty".into()));
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(bad(format!("longer than {MAX_TOKEN_BYTES} bytes")));
        }
        if !token.iter().all(|b| (0x21..0x7f).contains(b)) {
            return Err(bad(
                "holds a space, control or non-ASCII byte; a bearer token is printable ASCII"
                    .into(),
            ));
        }
        Ok(TokenCheck {
            token: Some(Arc::from(token)),
        })
    }

    /// Whether a token is required.
    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// The interceptor: passes the request if it carries the token.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` without it.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.token else {
            return Ok(req);
        };
        let Some(value) = req.metadata().get("authorization") else {
            return Err(Status::unauthenticated(
                "this server requires a bearer token (authorization: Bearer <token>); none was sent",
            ));
        };
        let given = value.as_bytes().strip_prefix(b"Bearer ").ok_or_else(|| {
            Status::unauthenticated("the authorization header is not `Bearer <token>`")
        })?;
        if constant_time_eq(given, token) {
            Ok(req)
        } else {
            Err(Status::unauthenticated("the bearer token is not valid"))
        }
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The listener's TLS configuration from a PEM certificate chain and its PEM private key.
///
/// # Errors
/// [`ServerError::Config`] when a file cannot be read.
pub fn tls_config(cert: &Path, key: &Path) -> Result<ServerTlsConfig, ServerError> {
    let read = |p: &Path, what: &str| {
        std::fs::read(p).map_err(|e| ServerError::Config {
            what: format!("TLS {what} {}", p.display()),
            reason: e.to_string(),
        })
    };
    let identity = Identity::from_pem(read(cert, "certificate")?, read(key, "key")?);
    Ok(ServerTlsConfig::new().identity(identity))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(value: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(v) = value {
            r.metadata_mut().insert("authorization", v.parse().unwrap());
        }
        r
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token\n").unwrap();
        let check = TokenCheck::from_file(&path).unwrap();
        assert!(
            check
                .check(with_header(Some("Bearer s3cret-token")))
                .is_ok()
        );
        for bad in [
            None,
            Some("Bearer s3cret-toke"),
            Some("Bearer s3cret-token2"),
            Some("s3cret-token"),
            Some("Basic s3cret-token"),
        ] {
            let err = check.check(with_header(bad)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
        assert!(TokenCheck::open().check(with_header(None)).is_ok());
    }

    #[test]
    fn unusable_token_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        for (content, why) in [
            (&b"  \n"[..], "empty"),
            (b"a b", "printable"),
            (b"\xff\xfe", "printable"),
        ] {
            std::fs::write(&path, content).unwrap();
            let err = TokenCheck::from_file(&path).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains("token file"), "{err}");
        }
        let err = TokenCheck::from_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
