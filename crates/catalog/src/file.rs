//! The `embedded` backend's catalog store: one JSON file beside the tantivy
//! indexes.

use crate::{CatalogChange, CatalogError, CatalogStore, Generations};
use std::io::Write as _;
use std::path::{Path, PathBuf};

const CATALOG_FILE: &str = "generations.json";
const LOCK_FILE: &str = "generations.lock";

/// The `embedded` backend's catalog: `generations.json` in the family's
/// `bm25.index_dir`, replaced atomically, changes serialised by an
/// advisory lock on `generations.lock`.
#[derive(Debug, Clone)]
pub struct FileCatalog {
    root: PathBuf,
}

impl FileCatalog {
    /// The catalog under `root` (created on first change).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    fn read_file(&self) -> Result<Generations, CatalogError> {
        let path = self.root.join(CATALOG_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| CatalogError::Corrupt {
                path,
                message: error.to_string(),
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Ok(Generations::default())
            }
            Err(source) => Err(CatalogError::Io { path, source }),
        }
    }
}

#[async_trait::async_trait]
impl CatalogStore for FileCatalog {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    async fn read(&self) -> Result<Generations, CatalogError> {
        self.read_file()
    }

    async fn update_with(&self, change: &mut CatalogChange<'_>) -> Result<(), CatalogError> {
        std::fs::create_dir_all(&self.root).map_err(|source| CatalogError::Io {
            path: self.root.clone(),
            source,
        })?;
        let lock_path = self.root.join(LOCK_FILE);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CatalogError::Io { path, source }
        };
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let mut generations = self.read_file()?;
        let before = generations.clone();
        change(&mut generations)?;
        if generations != before {
            let bytes = serde_json::to_vec_pretty(&generations).expect("the catalog serializes");
            write_atomically(&self.root.join(CATALOG_FILE), &bytes)?;
        }
        Ok(())
    }
}

/// Writes `bytes` to a temporary file, syncs it and renames it over `path`:
/// readers see the old content or the new, never a mix.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CatalogError> {
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CatalogError::Io { path, source }
    };
    let mut file = std::fs::File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(bytes).map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io(path))?;
    if let Some(directory) = path.parent() {
        // The rename is durable once the directory entry is.
        std::fs::File::open(directory)
            .and_then(|directory| directory.sync_all())
            .map_err(io(directory))?;
    }
    Ok(())
}
