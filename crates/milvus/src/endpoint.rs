//! Where Milvus is and how to reach it: its URL (`https://` for TLS), a CA
//! to trust besides the system's, and credentials (a token, or a user and
//! password). Secrets come from the environment or a secrets file, never
//! from the pipeline file, and never show in `Debug` or messages.

use docpipe_core::StoreError;
use docpipe_core::config::MilvusConfig;
use std::path::PathBuf;

/// The variable holding a Milvus (Zilliz Cloud) API token.
pub const TOKEN_VARIABLE: &str = "DOCPIPE_MILVUS_TOKEN";
/// The variables holding a Milvus user and password.
pub const USER_VARIABLES: (&str, &str) = ("DOCPIPE_MILVUS_USER", "DOCPIPE_MILVUS_PASSWORD");

/// How docpipe signs in to Milvus.
#[derive(Clone, PartialEq, Eq)]
enum Credentials {
    Token(String),
    UserPassword(String, String),
}

/// A Milvus server and how to reach it.
#[derive(Clone)]
pub struct MilvusEndpoint {
    /// `http://host:19530`, or `https://...` for TLS.
    pub url: String,
    /// A CA certificate (PEM) trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    credentials: Option<Credentials>,
}

impl std::fmt::Debug for MilvusEndpoint {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MilvusEndpoint")
            .field("url", &self.url)
            .field("ca_file", &self.ca_file)
            .field("signs_in", &self.credentials.is_some())
            .finish()
    }
}

impl From<&str> for MilvusEndpoint {
    /// A server reached without credentials, trusting the system's CAs.
    fn from(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            ca_file: None,
            credentials: None,
        }
    }
}

impl From<&String> for MilvusEndpoint {
    fn from(url: &String) -> Self {
        Self::from(url.as_str())
    }
}

impl MilvusEndpoint {
    /// The pipeline's Milvus: its `milvus.url` and `milvus.ca_file`, with
    /// credentials from `milvus.credentials_file` (one line: a token, or
    /// `user:password`), else `DOCPIPE_MILVUS_TOKEN`, else
    /// `DOCPIPE_MILVUS_USER` and `DOCPIPE_MILVUS_PASSWORD`.
    pub fn for_pipeline(config: &MilvusConfig) -> Result<Self, StoreError> {
        let credentials = match &config.credentials_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| StoreError::Rejected {
                    store: "Milvus",
                    message: format!(
                        "cannot read milvus.credentials_file {}: {error}",
                        path.display()
                    ),
                })?;
                Some(parse_credentials(text.trim()))
            }
            None => from_environment(|name| std::env::var(name).ok()),
        };
        Ok(Self {
            url: config.url.clone(),
            ca_file: config.ca_file.clone(),
            credentials,
        })
    }

    /// The SDK's connection settings.
    pub(crate) fn connect_config(&self) -> milvus::v2::prelude::ConnectConfig {
        // tonic's TLS takes the process's rustls provider, which rustls
        // cannot choose by itself when two are linked; an error means one
        // was installed already, which serves as well.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut config = milvus::v2::prelude::ConnectConfig::new().uri(&self.url);
        if let Some(ca_file) = &self.ca_file {
            config = config.ca_certificate(ca_file.display().to_string());
        }
        match &self.credentials {
            Some(Credentials::Token(token)) => config.token(token),
            Some(Credentials::UserPassword(user, password)) => {
                config.username(user).password(password)
            }
            None => config,
        }
    }
}

/// A credentials file's line: `user:password`, or a token.
fn parse_credentials(line: &str) -> Credentials {
    match line.split_once(':') {
        Some((user, password)) if !user.is_empty() && !password.is_empty() => {
            Credentials::UserPassword(user.to_owned(), password.to_owned())
        }
        _ => Credentials::Token(line.to_owned()),
    }
}

fn from_environment(var: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
    if let Some(token) = var(TOKEN_VARIABLE).filter(|token| !token.is_empty()) {
        return Some(Credentials::Token(token));
    }
    let (user, password) = USER_VARIABLES;
    var(user)
        .zip(var(password))
        .map(|(user, password)| Credentials::UserPassword(user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_a_file_line_or_the_environment_and_never_show() {
        assert!(matches!(
            parse_credentials("root:Milvus"),
            Credentials::UserPassword(user, _) if user == "root"
        ));
        assert!(matches!(
            parse_credentials("db_admin:"),
            Credentials::Token(_)
        ));
        let environment = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        assert!(matches!(
            from_environment(environment(&[("DOCPIPE_MILVUS_TOKEN", "t0k3n")])),
            Some(Credentials::Token(token)) if token == "t0k3n"
        ));
        assert!(matches!(
            from_environment(environment(&[
                ("DOCPIPE_MILVUS_USER", "u"),
                ("DOCPIPE_MILVUS_PASSWORD", "sekrit")
            ])),
            Some(Credentials::UserPassword(..))
        ));
        assert!(from_environment(environment(&[])).is_none());
        let endpoint = MilvusEndpoint {
            url: "https://milvus:19530".into(),
            ca_file: None,
            credentials: Some(Credentials::UserPassword("u".into(), "sekrit".into())),
        };
        assert!(!format!("{endpoint:?}").contains("sekrit"));
    }
}
