//! Where uploaded bytes live. The local-disk store (the default) keeps files under
//! `<data-dir>/files/<generated key>`; with a bucket configured they are objects in it instead
//! (`objects`). Either way uploads stream into `<data-dir>/tmp` first and are moved into place
//! only once their row is written, so a failed upload leaves nothing behind. A crash can still
//! leave temporary files: they are swept when the store opens (see `sweep`).
mod objects;

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::io::AsyncWriteExt;
use uuid::Uuid;

pub use self::objects::{ByteStream, Objects};

/// The file store.
#[derive(Clone, Debug)]
pub struct Storage {
    files: PathBuf,
    tmp: PathBuf,
    /// The bucket files live in, when there is one (else `files`).
    objects: Option<Objects>,
    _claim: Arc<Claim>,
}

/// Where the bytes of a stored file are read from.
pub enum Stored<'a> {
    /// A file on this instance's disk.
    File(PathBuf),
    /// An object in the bucket, under the file's storage key.
    Object(&'a Objects),
}

/// This process's own directory under `<data-dir>/tmp`, marked live by an exclusive lock on its
/// `.lock` file for as long as the store is open. Instances sharing a data directory (one
/// volume for the files of a cluster) then sweep only what dead processes left behind: the
/// operating system releases a crashed process's lock.
#[derive(Debug)]
struct Claim {
    dir: PathBuf,
    _lock: File,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const LOCK: &str = ".lock";

/// An upload being written; removed on drop unless it was persisted.
pub struct TempFile {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    persisted: bool,
}

impl TempFile {
    /// Appends bytes.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.file {
            Some(file) => file.write_all(bytes).await,
            None => Err(std::io::Error::other("temporary file already closed")),
        }
    }

    /// A second, read-only handle on the bytes written so far (for metadata readers). It stays
    /// valid after `persist` moves the file.
    pub async fn reopen(&self) -> std::io::Result<File> {
        Ok(tokio::fs::File::open(&self.path).await?.into_std().await)
    }

    /// Flushes and closes the file (before it is moved into place).
    pub async fn finish(&mut self) -> std::io::Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
            file.sync_all().await?;
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Storage {
    /// The local-disk store under `data_dir`.
    /// Temporary files left by processes that are gone are removed first.
    pub fn local(data_dir: &Path) -> std::io::Result<Self> {
        let files = data_dir.join("files");
        let tmp_root = data_dir.join("tmp");
        std::fs::create_dir_all(&files)?;
        std::fs::create_dir_all(&tmp_root)?;
        let swept = sweep(&tmp_root);
        if swept > 0 {
            tracing::info!(swept, "removed temporary upload files left by a crash");
        }
        let claim = claim(&tmp_root)?;
        Ok(Self {
            files,
            tmp: claim.dir.clone(),
            objects: None,
            _claim: Arc::new(claim),
        })
    }

    /// Files in `objects` instead of under the data directory (which still holds the
    /// temporary files of uploads in progress).
    pub fn with_objects(self, objects: Objects) -> Self {
        Self {
            objects: Some(objects),
            ..self
        }
    }

    /// Where unnamed spool files of GraphQL multipart uploads are created (same disk as `files`).
    pub fn spool_dir(&self) -> &Path {
        &self.tmp
    }

    /// A fresh temporary file for an incoming upload.
    pub async fn temp(&self) -> std::io::Result<TempFile> {
        let path = self.tmp.join(format!("{}.part", Uuid::new_v4()));
        let file = tokio::fs::File::create(&path).await?;
        Ok(TempFile {
            path,
            file: Some(file),
            persisted: false,
        })
    }

    /// A new storage key (never derived from anything the client sent).
    pub fn new_key() -> String {
        Uuid::new_v4().simple().to_string()
    }

    /// Moves a finished upload into place under `key` (into the bucket, when there is one: the
    /// temporary file goes once it is uploaded).
    pub async fn persist(&self, mut temp: TempFile, key: &str) -> std::io::Result<()> {
        temp.finish().await?;
        if let Some(objects) = &self.objects {
            return objects.upload(&temp.path, key).await;
        }
        tokio::fs::rename(&temp.path, self.path(key)).await?;
        temp.persisted = true;
        Ok(())
    }

    /// Where the bytes of `key` are read from.
    pub fn locate(&self, key: &str) -> Stored<'_> {
        match &self.objects {
            Some(objects) => Stored::Object(objects),
            None => Stored::File(self.path(key)),
        }
    }

    /// Where the bytes of `key` are on disk (without a bucket).
    fn path(&self, key: &str) -> PathBuf {
        // Keys are generated hex strings; anything else cannot name a stored file.
        let safe: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        self.files.join(safe)
    }

    /// Removes the bytes of `key` (missing files are fine).
    pub async fn delete(&self, key: &str) {
        if let Some(objects) = &self.objects {
            if let Err(err) = objects.delete(key).await {
                tracing::warn!(error = %err, "could not delete a stored object");
            }
            return;
        }
        if let Err(err) = tokio::fs::remove_file(self.path(key)).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %err, "could not delete a stored file");
        }
    }
}

/// Creates and locks this process's temporary directory. The lock file is locked under a
/// private name and only then renamed to `.lock`, so a sweeper never finds it unlocked.
fn claim(tmp_root: &Path) -> std::io::Result<Claim> {
    let id = Uuid::new_v4().simple().to_string();
    let dir = tmp_root.join(&id);
    std::fs::create_dir(&dir)?;
    let private = dir.join(format!("{id}.lock"));
    let lock = File::create(&private)?;
    lock.try_lock().map_err(std::io::Error::from)?;
    std::fs::rename(&private, dir.join(LOCK))?;
    Ok(Claim { dir, _lock: lock })
}

/// Removes what dead processes left in `tmp_root`: directories whose `.lock` nobody holds, and
/// loose files (the layout before per-process directories). A directory without `.lock` is
/// being claimed right now and is left alone. Returns how many entries went; failures are
/// logged, never fatal.
fn sweep(tmp_root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(tmp_root) else {
        return 0;
    };
    let mut swept = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let removal = match entry.file_type() {
            Ok(kind) if kind.is_dir() => match File::open(path.join(LOCK)) {
                // Held while removing, so nobody can claim the directory meanwhile.
                Ok(lock) if lock.try_lock().is_ok() => Some(std::fs::remove_dir_all(&path)),
                _ => None, // a live process's, or being claimed
            },
            Ok(_) => Some(std::fs::remove_file(&path)),
            Err(_) => None,
        };
        match removal {
            Some(Ok(())) => swept += 1,
            Some(Err(err)) => {
                tracing::warn!(error = %err, path = %path.display(), "could not remove a temporary file");
            }
            None => {}
        }
    }
    swept
}
