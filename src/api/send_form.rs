//! The send API's fields as a multipart form, with a file to upload:
//! `curl -F to=081234567890 -F type=document -F file=@tagihan.pdf`. The
//! fields are the JSON body's (read by the same rules); `file` is the one
//! part that is a file.

use super::gateway::GatewayError;
use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// What a form held: its fields, as the JSON body would, and the file.
pub struct SendForm {
    pub fields: Map<String, Value>,
    pub file: Option<FilePart>,
}

/// The uploaded file with what the client said of it; its bytes decide
/// what it is (`domain::UploadedFile::check`).
#[derive(Debug, Clone, Default)]
pub struct FilePart {
    pub contents: Bytes,
    pub mime: Option<String>,
    pub filename: Option<String>,
}

pub async fn read(mut multipart: Multipart) -> Result<SendForm, GatewayError> {
    let mut form = SendForm { fields: Map::new(), file: None };
    while let Some(field) = multipart.next_field().await.map_err(refused)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if form.file.is_some() {
                return Err(GatewayError::Form("one file per message: file is given twice".into()));
            }
            let mime = field.content_type().map(str::to_owned);
            let filename = field.file_name().map(str::to_owned);
            let contents = field.bytes().await.map_err(refused)?;
            form.file = Some(FilePart { contents, mime, filename });
            continue;
        }
        let value = field.text().await.map_err(refused)?;
        if form.fields.insert(name.clone(), Value::String(value)).is_some() {
            return Err(GatewayError::Form(format!("{name} is given twice")));
        }
    }
    Ok(form)
}

fn refused(error: MultipartError) -> GatewayError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        GatewayError::BodyTooLarge
    } else {
        GatewayError::Form(error.body_text())
    }
}
