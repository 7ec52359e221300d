//! Streaming uploads: where the bytes go (`UploadStore`), and what they are (magic bytes).
//!
//! Files are written chunk by chunk as they arrive, never held whole in memory. A
//! pending upload lives under a temporary name; `commit` fsyncs and renames it into
//! place. A pending upload that is dropped without `commit` — an error, a rejected
//! file, a client that disconnected mid-body — deletes its temporary file, so nothing
//! is left behind whatever path the request takes.

use std::{
    io,
    path::{Path, PathBuf},
};

use futures_util::future::BoxFuture;
use tokio::io::AsyncWriteExt;

/// The kinds of document accepted, decided from the first bytes of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Jpeg,
    Png,
    Pdf,
}

impl FileKind {
    /// Bytes needed to tell the kinds apart.
    pub const SNIFF_LEN: usize = 8;

    /// The kind the bytes say, whatever the client's name or Content-Type claims.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if head.starts_with(b"%PDF-") {
            Some(Self::Pdf)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Pdf => "application/pdf",
        }
    }

    /// The kind a stored `content_type` names.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        [Self::Jpeg, Self::Png, Self::Pdf]
            .into_iter()
            .find(|k| k.content_type() == content_type)
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Pdf => "pdf",
        }
    }
}

/// A stored document sent back as an attachment with its detected type.
pub struct Download {
    pub body: poem::Body,
    pub kind: FileKind,
    pub filename_stem: String,
}

impl poem::IntoResponse for Download {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .content_type(self.kind.content_type())
            .header(
                poem::http::header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}.{}\"",
                    self.filename_stem,
                    self.kind.extension()
                ),
            )
            .header(poem::http::header::CACHE_CONTROL, "private, no-store")
            .body(self.body)
    }
}

impl poem_openapi::ApiResponse for Download {
    fn meta() -> poem_openapi::registry::MetaResponses {
        use poem_openapi::registry::{
            MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef,
        };
        let binary =
            || MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "binary")));
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The document, as an attachment",
                status: Some(200),
                status_range: None,
                content: ["image/jpeg", "image/png", "application/pdf"]
                    .into_iter()
                    .map(|content_type| MetaMediaType {
                        content_type,
                        schema: binary(),
                    })
                    .collect(),
                headers: vec![],
            }],
        }
    }

    fn register(_registry: &mut poem_openapi::registry::Registry) {}
}

/// An upload being written. Dropping it without `commit` discards it.
pub trait PendingUpload: Send {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
    /// Makes the bytes durable under their final key and returns it.
    fn commit(self: Box<Self>) -> BoxFuture<'static, io::Result<String>>;
}

/// Where uploaded documents are kept. The first implementation is a local folder;
/// an object store would implement the same three operations.
pub trait UploadStore: Send + Sync {
    /// Starts a new object under `folder` (a server-generated name, never client input).
    fn begin(&self, folder: String) -> BoxFuture<'static, io::Result<Box<dyn PendingUpload>>>;
    /// The bytes of a committed object.
    fn open(&self, key: &str) -> BoxFuture<'static, io::Result<poem::Body>>;
    /// Deletes a committed object (when the row that would point to it was not written).
    fn remove(&self, key: &str) -> BoxFuture<'static, io::Result<()>>;
    /// Bytes still free for new objects.
    fn available(&self) -> BoxFuture<'static, io::Result<u64>>;
}

/// Files under a root folder, one subfolder per owner, owner-only permissions.
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Keys are `folder/uuid`, both server-made; anything else is refused.
    fn path_of(&self, key: &str) -> io::Result<PathBuf> {
        let safe = !key.is_empty()
            && key.split('/').count() == 2
            && key.split('/').all(|part| {
                !part.is_empty() && part.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            });
        if safe {
            Ok(self.root.join(key))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a storage key",
            ))
        }
    }
}

struct LocalPending {
    file: Option<tokio::fs::File>,
    temp: PathBuf,
    key: String,
    root: PathBuf,
    committed: bool,
}

impl PendingUpload for LocalPending {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            match self.file.as_mut() {
                Some(file) => file.write_all(chunk).await,
                None => Err(io::Error::other("upload already finished")),
            }
        })
    }

    fn commit(mut self: Box<Self>) -> BoxFuture<'static, io::Result<String>> {
        Box::pin(async move {
            let mut file = self
                .file
                .take()
                .ok_or_else(|| io::Error::other("upload already finished"))?;
            file.flush().await?;
            file.sync_all().await?;
            drop(file);
            let target = self.root.join(&self.key);
            tokio::fs::rename(&self.temp, &target).await?;
            self.committed = true;
            Ok(std::mem::take(&mut self.key))
        })
    }
}

impl Drop for LocalPending {
    fn drop(&mut self) {
        if !self.committed {
            // Synchronous on purpose: Drop may run while the request future is torn down.
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

async fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path).await
}

impl UploadStore for LocalStore {
    fn begin(&self, folder: String) -> BoxFuture<'static, io::Result<Box<dyn PendingUpload>>> {
        let root = self.root.clone();
        Box::pin(async move {
            let dir = root.join(&folder);
            create_private_dir(&dir).await?;
            let name = uuid::Uuid::now_v7().to_string();
            let temp = dir.join(format!(".{name}.part"));
            let mut options = tokio::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            options.mode(0o600);
            let file = options.open(&temp).await?;
            Ok(Box::new(LocalPending {
                file: Some(file),
                temp,
                key: format!("{folder}/{name}"),
                root,
                committed: false,
            }) as Box<dyn PendingUpload>)
        })
    }

    fn open(&self, key: &str) -> BoxFuture<'static, io::Result<poem::Body>> {
        let path = self.path_of(key);
        Box::pin(async move {
            let file = tokio::fs::File::open(path?).await?;
            Ok(poem::Body::from_async_read(file))
        })
    }

    fn remove(&self, key: &str) -> BoxFuture<'static, io::Result<()>> {
        let path = self.path_of(key);
        Box::pin(async move { tokio::fs::remove_file(path?).await })
    }

    /// Free space on the root's file system, for unprivileged writers.
    fn available(&self) -> BoxFuture<'static, io::Result<u64>> {
        let root = self.root.clone();
        Box::pin(async move {
            create_private_dir(&root).await?;
            tokio::task::spawn_blocking(move || {
                let stats = rustix::fs::statvfs(&root)?;
                Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
            })
            .await?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide_the_kind() {
        assert_eq!(
            FileKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(FileKind::Jpeg)
        );
        assert_eq!(
            FileKind::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(FileKind::Png)
        );
        assert_eq!(FileKind::sniff(b"%PDF-1.7\n"), Some(FileKind::Pdf));
        for other in [&b"<html>"[..], b"GIF89a", b"", b"%PD", b"\x89PNG"] {
            assert_eq!(FileKind::sniff(other), None);
        }
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let store = LocalStore::new("/srv/uploads");
        assert!(store.path_of("0a1b-2c/3d4e-5f").is_ok());
        for bad in [
            "../etc/passwd",
            "a/../../b",
            "/abs/olute",
            "a/b/c",
            "a",
            "a/.b",
            "",
        ] {
            assert!(store.path_of(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn dropped_uploads_leave_nothing_and_committed_ones_are_private() {
        let root = std::env::temp_dir().join(format!("upload-test-{}", uuid::Uuid::now_v7()));
        let store = LocalStore::new(&root);
        let folder = uuid::Uuid::now_v7().to_string();
        let mut pending = store.begin(folder.clone()).await.expect("begin");
        pending.write(b"%PDF-1.7 abandoned").await.expect("write");
        drop(pending);
        assert_eq!(
            std::fs::read_dir(root.join(&folder)).expect("dir").count(),
            0
        );

        let mut pending = store.begin(folder.clone()).await.expect("begin");
        pending.write(b"%PDF-1.7 kept").await.expect("write");
        let key = pending.commit().await.expect("commit");
        let path = root.join(&key);
        assert_eq!(std::fs::read(&path).expect("read"), b"%PDF-1.7 kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
                0o600
            );
        }
        store.remove(&key).await.expect("remove");
        let _ = std::fs::remove_dir_all(root);
    }
}
