//! Where uploaded bytes live. The local-disk store (the default) keeps files under
//! `<data-dir>/files/<generated key>`; uploads stream into `<data-dir>/tmp` first and are moved
//! into place only once their row is written, so a failed upload leaves nothing behind.
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// The file store.
#[derive(Clone, Debug)]
pub struct Storage {
    files: PathBuf,
    tmp: PathBuf,
}

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
    pub fn local(data_dir: &Path) -> std::io::Result<Self> {
        let files = data_dir.join("files");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&files)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(Self { files, tmp })
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

    /// Moves a finished upload into place under `key`.
    pub async fn persist(&self, mut temp: TempFile, key: &str) -> std::io::Result<()> {
        temp.finish().await?;
        tokio::fs::rename(&temp.path, self.path(key)).await?;
        temp.persisted = true;
        Ok(())
    }

    /// Where the bytes of `key` are.
    pub fn path(&self, key: &str) -> PathBuf {
        // Keys are generated hex strings; anything else cannot name a stored file.
        let safe: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        self.files.join(safe)
    }

    /// Removes the bytes of `key` (missing files are fine).
    pub async fn delete(&self, key: &str) {
        if let Err(err) = tokio::fs::remove_file(self.path(key)).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %err, "could not delete a stored file");
        }
    }
}
