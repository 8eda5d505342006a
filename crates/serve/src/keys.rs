//! API keys: each maps to one tenant, or to the operators.
//!
//! The keys file holds SHA-256 digests, never keys: whoever reads it (or a
//! backup of it) cannot call the API. `docpipe keys add` makes a key,
//! prints it once and appends its digest.
//!
//! ```toml
//! [[key]]
//! name = "acme-rag"        # shown in logs instead of the key
//! sha256 = "9f86d08…"
//! tenant = "acme"
//!
//! [[key]]
//! name = "ops"
//! sha256 = "60303ae…"
//! admin = true
//! ```

use docpipe_core::TenantId;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Why the keys file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file cannot be read or written.
    #[error("cannot use the API keys file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid keys file.
    #[error("invalid API keys file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Who a valid key speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// One tenant's application: reads that tenant's documents only.
    Tenant(TenantId),
    /// Operators: status, and any tenant's documents when named.
    Admin,
}

/// The holder of a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's name in the keys file, for logs.
    pub name: String,
    /// What it may read.
    pub role: Role,
}

/// One entry of the keys file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<TenantId>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    admin: bool,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    key: Vec<KeyEntry>,
}

/// The API keys a server accepts, by digest.
#[derive(Debug, Default, Clone)]
pub struct ApiKeys {
    by_digest: HashMap<String, Principal>,
}

impl ApiKeys {
    /// Reads a keys file.
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        let file = read_file(path)?;
        let invalid = |message: String| KeysError::Invalid {
            path: path.to_owned(),
            message,
        };
        let mut by_digest = HashMap::new();
        for entry in file.key {
            let role = match (entry.tenant, entry.admin) {
                (Some(tenant), false) => Role::Tenant(tenant),
                (None, true) => Role::Admin,
                _ => {
                    return Err(invalid(format!(
                        "key {:?} needs exactly one of `tenant = \"…\"` or `admin = true`",
                        entry.name
                    )));
                }
            };
            let digest = entry.sha256.to_ascii_lowercase();
            if digest.len() != 64 || !digest.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return Err(invalid(format!(
                    "key {:?}: sha256 must be 64 hex digits (the digest of the key, never the key itself)",
                    entry.name
                )));
            }
            let principal = Principal {
                name: entry.name,
                role,
            };
            if let Some(previous) = by_digest.insert(digest, principal) {
                return Err(invalid(format!(
                    "key {:?} has the same digest as another entry",
                    previous.name
                )));
            }
        }
        Ok(Self { by_digest })
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether no key is accepted (every request is refused).
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Who `key` speaks for, if it is valid.
    pub fn principal(&self, key: &str) -> Option<&Principal> {
        self.by_digest.get(&digest(key))
    }
}

/// A new random key for `role`, appended (as its digest) to the keys file
/// at `path` under `name`; the file is created if missing. Returns the key:
/// it is shown once and stored nowhere.
pub fn add_key(path: &Path, name: &str, role: &Role) -> Result<String, KeysError> {
    let mut file = match path.exists() {
        true => read_file(path)?,
        false => KeysFile::default(),
    };
    if file.key.iter().any(|entry| entry.name == name) {
        return Err(KeysError::Invalid {
            path: path.to_owned(),
            message: format!("a key named {name:?} exists already; choose another name"),
        });
    }
    let key = format!(
        "dpk_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    file.key.push(KeyEntry {
        name: name.to_owned(),
        sha256: digest(&key),
        tenant: match role {
            Role::Tenant(tenant) => Some(tenant.clone()),
            Role::Admin => None,
        },
        admin: *role == Role::Admin,
    });
    let text = toml::to_string(&file).map_err(|error| KeysError::Invalid {
        path: path.to_owned(),
        message: error.to_string(),
    })?;
    let header = "# docpipe API keys: SHA-256 digests of the keys, never the keys.\n\n";
    std::fs::write(path, format!("{header}{text}")).map_err(|source| KeysError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(key)
}

/// The lowercase hex SHA-256 of a key.
pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn read_file(path: &Path) -> Result<KeysFile, KeysError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeysError::Io {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|error| KeysError::Invalid {
        path: path.to_owned(),
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_keys_are_stored_as_digests_and_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let acme = Role::Tenant(TenantId::new("acme").unwrap());
        let tenant_key = add_key(&path, "acme-rag", &acme).unwrap();
        let admin_key = add_key(&path, "ops", &Role::Admin).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&tenant_key) && !text.contains(&admin_key));

        let keys = ApiKeys::load(&path).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.principal(&tenant_key).unwrap().role, acme);
        assert_eq!(keys.principal(&admin_key).unwrap().role, Role::Admin);
        assert!(keys.principal("dpk_guessed").is_none());
        assert!(
            add_key(&path, "ops", &Role::Admin).is_err(),
            "names are unique"
        );
    }

    #[test]
    fn an_entry_must_name_a_tenant_or_be_admin_and_hold_a_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        for (entry, complaint) in [
            (
                r#"name = "k"
sha256 = "00""#,
                "exactly one of",
            ),
            (
                r#"name = "k"
sha256 = "00"
tenant = "acme""#,
                "64 hex digits",
            ),
            (
                r#"name = "k"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
tenant = "acme"
admin = true"#,
                "exactly one of",
            ),
        ] {
            std::fs::write(&path, format!("[[key]]\n{entry}\n")).unwrap();
            let error = ApiKeys::load(&path).unwrap_err().to_string();
            assert!(error.contains(complaint), "{error}");
        }
    }
}
