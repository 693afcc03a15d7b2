//! Files on S3-compatible object storage (`GOFTGU_S3_BUCKET`), so every instance serves every
//! file. Uploads are still spooled to this instance's temporary directory first (limits, type
//! detection and metadata read the spooled bytes); `upload` then streams the finished file into
//! the bucket, in parts of `PART` bytes past the first (an S3 multipart upload), so no file is
//! ever held in memory whole. Reads stream the object, or one byte range of it, back.
use std::{fmt, io, ops::Range, path::Path, sync::Arc};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, aws::AmazonS3Builder, buffered::BufWriter,
    path::Path as Key,
};
use tokio::io::AsyncWriteExt;

use crate::config::ObjectStorage;

/// Size of one part of a multipart upload; a file up to this size goes up in one PUT. S3 wants
/// parts of at least 5 MiB (but the last).
const PART: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once: an upload holds at most about
/// `PART * (PARTS_IN_FLIGHT + 1)` bytes in memory.
const PARTS_IN_FLIGHT: usize = 2;
/// Read size from the spooled file.
const READ_BUFFER: usize = 256 * 1024;

/// Bytes of a stored object, as they arrive.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// A bucket (and a key prefix in it) holding the uploaded files.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// Folders every key lives under (from `GOFTGU_S3_PREFIX`).
    prefix: Vec<String>,
    /// `s3://bucket/prefix` for logs.
    name: String,
}

impl fmt::Debug for Objects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Objects").field("at", &self.name).finish()
    }
}

impl Objects {
    /// The bucket named by the settings (`bucket` must be set). Path-style requests, so a
    /// self-hosted endpoint needs no wildcard DNS; `http://` endpoints are allowed. Settings not
    /// given fall back to the usual `AWS_*` variables (and then the instance's role).
    pub fn s3(settings: &ObjectStorage) -> anyhow::Result<Self> {
        let bucket = settings
            .bucket
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("GOFTGU_S3_BUCKET is not set"))?;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&settings.region)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(id) = &settings.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build()?;
        let prefix: Vec<String> = settings
            .prefix
            .split('/')
            .filter(|part| !part.is_empty())
            .map(str::to_string)
            .collect();
        let name = format!("s3://{bucket}/{}", prefix.join("/"));
        Ok(Self {
            store: Arc::new(store),
            prefix,
            name,
        })
    }

    /// Where the object of `key` is (the prefix, then the key).
    fn key(&self, key: &str) -> Key {
        // Keys are generated hex strings; anything else cannot name a stored file.
        let safe: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        Key::from_iter(
            self.prefix
                .iter()
                .map(String::as_str)
                .chain([safe.as_str()]),
        )
    }

    /// Checks once at start-up that the bucket answers; a failure is logged, not fatal (the
    /// store may come up after this instance).
    pub async fn probe(&self) {
        match self.store.head(&self.key("goftguprobe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {
                tracing::info!(at = %self.name, "files live in object storage");
            }
            Err(err) => {
                tracing::warn!(at = %self.name, error = %err, "object storage does not answer yet");
            }
        }
    }

    /// Streams the finished file at `file` into the object of `key`; on failure the partial
    /// multipart upload is aborted, so nothing is left in the bucket.
    pub(super) async fn upload(&self, file: &Path, key: &str) -> io::Result<()> {
        let file = tokio::fs::File::open(file).await?;
        let mut reader = tokio::io::BufReader::with_capacity(READ_BUFFER, file);
        let mut writer = BufWriter::with_capacity(self.store.clone(), self.key(key), PART)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        let written = async {
            tokio::io::copy_buf(&mut reader, &mut writer).await?;
            writer.shutdown().await
        }
        .await;
        if let Err(err) = written {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, "could not abort a failed upload to object storage");
            }
            return Err(err);
        }
        Ok(())
    }

    /// The bytes of `key`, or of `range` of them; `NotFound` when there is no such object.
    pub async fn read(&self, key: &str, range: Option<Range<u64>>) -> io::Result<ByteStream> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&self.key(key), options)
            .await
            .map_err(to_io)?;
        Ok(result.into_stream().map_err(to_io).boxed())
    }

    /// Removes the object of `key` (a missing one is fine).
    pub(super) async fn delete(&self, key: &str) -> io::Result<()> {
        match self.store.delete(&self.key(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(to_io(err)),
        }
    }
}

fn to_io(err: object_store::Error) -> io::Error {
    match err {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, err),
        other => io::Error::other(other),
    }
}
