//! Media on disk, each file named by the SHA-256 of its bytes.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::fmt::Display;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tokio::io::AsyncWriteExt;

/// Files still being written; never a valid hash, so never listed or read.
const PARTIAL_PREFIX: &str = ".partial-";

/// Media kept under `$DATA_DIR/media/<sha256 hex>`: a redelivered or forwarded file is stored once.
#[derive(Debug, Clone)]
pub struct MediaFiles {
    dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// 64 lowercase hex digits: the file's name in the folder.
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("file larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("storing media: {0}")]
    Io(#[from] io::Error),
    /// The stream being stored failed.
    #[error("reading media: {0}")]
    Source(String),
}

impl MediaFiles {
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// None unless `sha256` is 64 lowercase hex: a name from the database can never reach outside the folder.
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        is_hash(sha256).then(|| self.dir.join(sha256))
    }

    /// A name that is not a hash is `NotFound`, like a file that was removed.
    pub async fn read(&self, sha256: &str) -> io::Result<Vec<u8>> {
        let path = self.path(sha256).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        tokio::fs::read(path).await
    }

    /// Streams into a temporary file in the same folder while hashing; past
    /// `max_bytes` stops and removes it. Renamed to its hash at the end; if
    /// that file exists already, the temporary is dropped.
    pub async fn store_stream<S, E>(&self, stream: S, max_bytes: u64) -> Result<StoredFile, FileError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Display,
    {
        Ok(self.write_partial(stream, max_bytes).await?.keep().await?)
    }

    /// For uploads already in memory (the web chat).
    pub async fn store_bytes(&self, bytes: &[u8], max_bytes: u64) -> Result<StoredFile, FileError> {
        if bytes.len() as u64 > max_bytes {
            return Err(FileError::TooLarge { limit: max_bytes });
        }
        let chunk = Ok::<_, Infallible>(Bytes::copy_from_slice(bytes));
        self.store_stream(futures::stream::iter([chunk]), max_bytes).await
    }

    /// Files (by hash) last modified before `older_than`. Temporaries that
    /// old were left by a crash (one being written is touched by every
    /// chunk, and downloads are bounded by a timeout), so they are removed
    /// here rather than listed.
    pub async fn stored_before(&self, older_than: SystemTime) -> io::Result<Vec<String>> {
        let mut found = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let Ok(name) = entry.file_name().into_string() else { continue };
            let metadata = match entry.metadata().await {
                Ok(metadata) => metadata,
                // Removed between listing and looking: nothing to report.
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            if !metadata.is_file() || metadata.modified()? >= older_than {
                continue;
            }
            if name.starts_with(PARTIAL_PREFIX) {
                remove_file(&entry.path()).await?;
            } else if is_hash(&name) {
                found.push(name);
            }
        }
        Ok(found)
    }

    /// A file that is already gone (or never could exist) is not an error.
    pub async fn remove(&self, sha256: &str) -> io::Result<()> {
        match self.path(sha256) {
            Some(path) => remove_file(&path).await,
            None => Ok(()),
        }
    }

    /// The bytes written and hashed, not yet under their name, so a caller
    /// can still refuse them (a hash that differs from the one promised)
    /// without ever touching an identical file stored before.
    pub(crate) async fn write_partial<S, E>(&self, stream: S, max_bytes: u64) -> Result<Partial, FileError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Display,
    {
        let mut partial = Partial {
            dir: self.dir.clone(),
            path: self.dir.join(format!("{PARTIAL_PREFIX}{}", uuid::Uuid::new_v4())),
            file: StoredFile { sha256: String::new(), bytes: 0 },
            kept: false,
        };
        let mut out = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&partial.path).await?;
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut stream = std::pin::pin!(stream);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| FileError::Source(error.to_string()))?;
            bytes += chunk.len() as u64;
            if bytes > max_bytes {
                return Err(FileError::TooLarge { limit: max_bytes });
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        // Without this a crash soon after the rename can leave a short file
        // under the hash of the full one, and every later copy would be
        // deduplicated onto it.
        out.sync_all().await?;
        partial.file = StoredFile { sha256: hex::encode(hasher.finalize()), bytes };
        Ok(partial)
    }
}

/// A temporary file in the media folder, removed when dropped unless kept:
/// an error, a refusal or a cancelled future (a download's timeout) all
/// leave nothing behind.
pub(crate) struct Partial {
    dir: PathBuf,
    path: PathBuf,
    file: StoredFile,
    kept: bool,
}

impl Partial {
    pub(crate) fn file(&self) -> &StoredFile {
        &self.file
    }

    /// Puts the file under its hash. When that file exists already it is
    /// touched instead, so that expiry by age counts from this latest copy.
    pub(crate) async fn keep(mut self) -> io::Result<StoredFile> {
        let target = self.dir.join(&self.file.sha256);
        match touch(&target).await {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                tokio::fs::rename(&self.path, &target).await?;
                self.kept = true;
            }
            Err(error) => return Err(error),
        }
        Ok(self.file.clone())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            // Drop cannot await; unlinking one file is a short system call.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn is_hash(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

async fn touch(path: &Path) -> io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        std::fs::File::options().write(true).open(&path)?.set_modified(SystemTime::now())
    })
    .await
    .map_err(io::Error::other)?
}

async fn remove_file(path: &Path) -> io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn files() -> (tempfile::TempDir, MediaFiles) {
        let dir = tempfile::tempdir().unwrap();
        let files = MediaFiles::open(dir.path().join("media")).unwrap();
        (dir, files)
    }

    fn names(files: &MediaFiles) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(&files.dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    fn backdate(files: &MediaFiles, name: &str, age: Duration) {
        let file = std::fs::File::options().write(true).open(files.dir.join(name)).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[tokio::test]
    async fn stores_under_the_hash_once() {
        let (_dir, files) = files();
        let stored = files.store_bytes(b"hello", 5).await.unwrap();
        assert_eq!(stored, StoredFile { sha256: HELLO_SHA256.into(), bytes: 5 });
        let chunks = futures::stream::iter(["he", "ll", "o"].map(|c| Ok::<_, Infallible>(Bytes::from(c))));
        assert_eq!(files.store_stream(chunks, 5).await.unwrap(), stored);
        assert_eq!(names(&files), [HELLO_SHA256]);
        assert_eq!(files.read(HELLO_SHA256).await.unwrap(), b"hello");
    }

    #[tokio::test]
    async fn a_stream_past_the_limit_leaves_nothing() {
        let (_dir, files) = files();
        let chunks = futures::stream::iter((0..10).map(|_| Ok::<_, Infallible>(Bytes::from_static(&[7; 100]))));
        let error = files.store_stream(chunks, 950).await.unwrap_err();
        assert!(matches!(error, FileError::TooLarge { limit: 950 }), "{error:?}");
        assert!(names(&files).is_empty());
        assert!(matches!(files.store_bytes(&[1; 11], 10).await, Err(FileError::TooLarge { limit: 10 })));
        assert!(names(&files).is_empty());
    }

    #[tokio::test]
    async fn a_failing_stream_leaves_nothing() {
        let (_dir, files) = files();
        let chunks = futures::stream::iter([Ok(Bytes::from_static(b"start")), Err("connection reset")]);
        let error = files.store_stream(chunks, 1000).await.unwrap_err();
        assert!(matches!(&error, FileError::Source(message) if message == "connection reset"), "{error:?}");
        assert!(names(&files).is_empty());
    }

    #[tokio::test]
    async fn only_hashes_name_files() {
        let (_dir, files) = files();
        for bad in
            ["../x", "", HELLO_SHA256.to_uppercase().as_str(), &HELLO_SHA256[..63], format!("{HELLO_SHA256}0").as_str()]
        {
            assert!(files.path(bad).is_none(), "{bad:?}");
            assert_eq!(files.read(bad).await.unwrap_err().kind(), io::ErrorKind::NotFound);
        }
        assert_eq!(files.path(HELLO_SHA256), Some(files.dir.join(HELLO_SHA256)));
    }

    #[tokio::test]
    async fn lists_old_files_and_removes_them() {
        let (_dir, files) = files();
        let old = files.store_bytes(b"old", 100).await.unwrap();
        let new = files.store_bytes(b"new", 100).await.unwrap();
        backdate(&files, &old.sha256, Duration::from_secs(7200));
        std::fs::write(files.dir.join(".partial-crashed"), b"half").unwrap();
        backdate(&files, ".partial-crashed", Duration::from_secs(7200));
        std::fs::write(files.dir.join(".partial-writing"), b"half").unwrap();

        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(files.stored_before(hour_ago).await.unwrap(), [old.sha256.as_str()]);
        let mut left = vec![".partial-writing".to_owned(), old.sha256.clone(), new.sha256.clone()];
        left.sort();
        assert_eq!(names(&files), left);

        files.remove(&old.sha256).await.unwrap();
        files.remove(&old.sha256).await.unwrap();
        files.remove("../media").await.unwrap();
        assert_eq!(files.read(&old.sha256).await.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(files.stored_before(hour_ago).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_second_copy_makes_the_file_young_again() {
        let (_dir, files) = files();
        let stored = files.store_bytes(b"hello", 100).await.unwrap();
        backdate(&files, &stored.sha256, Duration::from_secs(7200));
        files.store_bytes(b"hello", 100).await.unwrap();
        assert!(files.stored_before(SystemTime::now() - Duration::from_secs(3600)).await.unwrap().is_empty());
    }
}
