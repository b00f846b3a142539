//! Passage vectors kept beside the tantivy index of the same generation, so
//! they are built, swapped and removed with it. Each vector is stored with
//! the hash of the text it was made from: the next build asks the provider
//! only for passages whose text is new.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

const FILE: &str = "vectors.bin";
const MAGIC: &[u8; 4] = b"WAV1";

pub(crate) type TextKey = [u8; 32];

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Vectors {
    pub model: String,
    dimensions: usize,
    keys: Vec<TextKey>,
    /// Unit vectors one after another, in passage order.
    values: Vec<f32>,
}

impl Vectors {
    /// `vectors` must all have one length, as `Embedder` guarantees.
    pub(crate) fn new(model: String, keys: Vec<TextKey>, vectors: Vec<Vec<f32>>) -> Self {
        let dimensions = vectors.first().map_or(0, Vec::len);
        Self { model, dimensions, keys, values: vectors.into_iter().flatten().collect() }
    }

    /// The vectors of this generation by text, for reuse by the next.
    pub(crate) fn by_key(&self) -> HashMap<TextKey, &[f32]> {
        self.keys.iter().copied().zip(self.values.chunks(self.dimensions.max(1))).collect()
    }

    /// Passage numbers of the `limit` vectors nearest `query`, nearest
    /// first. A query of another size (the provider changed models under
    /// the same name) finds nothing rather than garbage.
    pub(crate) fn nearest(&self, query: &[f32], limit: usize) -> Vec<u32> {
        if query.len() != self.dimensions || self.dimensions == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(f32, u32)> = self
            .values
            .chunks(self.dimensions)
            .zip(0u32..)
            .map(|(vector, at)| (vector.iter().zip(query).map(|(a, b)| a * b).sum(), at))
            .collect();
        let limit = limit.min(scored.len());
        if limit == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(limit - 1, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(limit);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().map(|(_, at)| at).collect()
    }

    pub(crate) fn save(&self, dir: &Path) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join(FILE))?);
        out.write_all(MAGIC)?;
        for number in [self.model.len(), self.dimensions, self.keys.len()] {
            out.write_all(&u32::try_from(number).map_err(std::io::Error::other)?.to_le_bytes())?;
        }
        out.write_all(self.model.as_bytes())?;
        for key in &self.keys {
            out.write_all(key)?;
        }
        for value in &self.values {
            out.write_all(&value.to_le_bytes())?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    }

    /// `Ok(None)` when the generation was built without vectors.
    pub(crate) fn load(dir: &Path) -> std::io::Result<Option<Self>> {
        let bytes = match std::fs::read(dir.join(FILE)) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let damaged = || std::io::Error::new(std::io::ErrorKind::InvalidData, "damaged vectors file");
        let mut input = bytes.as_slice();
        let mut magic = [0; 4];
        input.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(damaged());
        }
        let mut number = || -> std::io::Result<usize> {
            let mut raw = [0; 4];
            input.read_exact(&mut raw)?;
            Ok(u32::from_le_bytes(raw) as usize)
        };
        let (model_len, dimensions, count) = (number()?, number()?, number()?);
        let expected = model_len + count * 32 + count * dimensions * 4;
        if input.len() != expected {
            return Err(damaged());
        }
        let (model, rest) = input.split_at(model_len);
        let model = String::from_utf8(model.to_vec()).map_err(|_| damaged())?;
        let (keys, values) = rest.split_at(count * 32);
        let keys = keys.chunks_exact(32).map(|k| k.try_into().unwrap_or([0; 32])).collect();
        let values = values.chunks_exact(4).map(|v| f32::from_le_bytes([v[0], v[1], v[2], v[3]])).collect();
        Ok(Some(Self { model, dimensions, keys, values }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vectors {
        let vectors = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.6, 0.8]];
        Vectors::new("m/e".into(), vec![[1; 32], [2; 32], [3; 32]], vectors)
    }

    #[test]
    fn the_nearest_vectors_come_first() {
        let vectors = sample();
        assert_eq!(vectors.nearest(&[0.0, 1.0], 2), [1, 2]);
        assert_eq!(vectors.nearest(&[1.0, 0.0], 10), [0, 2, 1]);
        assert!(vectors.nearest(&[1.0, 0.0, 0.0], 2).is_empty(), "another model's size");
        assert_eq!(vectors.by_key()[&[3; 32]], [0.6, 0.8]);
    }

    #[test]
    fn saved_vectors_load_back_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Vectors::load(dir.path()).unwrap(), None);
        sample().save(dir.path()).unwrap();
        assert_eq!(Vectors::load(dir.path()).unwrap(), Some(sample()));
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, bytes).unwrap();
        assert!(Vectors::load(dir.path()).is_err());
    }
}
