//! An uploaded file as the part of a multipart form, the way the Cloud API
//! and Fonnte both take one.

use super::SendError;
use crate::domain::UploadedFile;
use reqwest::multipart::Part;

/// The file's bytes, named `filename` ("file" without one) and typed.
pub fn file_part(upload: &UploadedFile, filename: Option<&str>) -> Result<Part, SendError> {
    let refuse = |title: String| SendError::Permanent { code: None, title };
    // The sender loads the bytes before every attempt; without them there
    // is nothing a retry could change.
    let contents = upload.contents.clone().ok_or_else(|| refuse("the uploaded file was not loaded".into()))?;
    let length = contents.len() as u64;
    Part::stream_with_length(contents, length)
        .file_name(filename.unwrap_or("file").to_owned())
        .mime_str(&upload.mime)
        .map_err(|error| refuse(format!("file type {:?}: {error}", upload.mime)))
}
