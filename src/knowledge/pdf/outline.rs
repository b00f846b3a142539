//! The PDF outline (bookmarks): the section tree as the author's tool wrote
//! it, each title with the page it points to. Where a document has one it is
//! the surest source of headings. Read by hand rather than with lopdf's
//! helpers so that a hostile file (an outline or name tree that loops, or
//! nests without end) costs a bounded walk and never a stack overflow.

use pdf_extract::{Document, Object, ObjectId};
use std::collections::{HashMap, HashSet};

/// More entries than any real book has; a file claiming more is hostile.
const MAX_NODES: usize = 20_000;
/// Deeper levels than this are folded into the deepest.
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// 1 for the outline's top level.
    pub level: usize,
    pub title: String,
    /// 1-based page number, as in `Document::get_pages`.
    pub page: u32,
}

/// The outline's entries in document order; empty when the file has none
/// or it cannot be read. Entries whose destination is not a page are left
/// out.
pub(crate) fn read(doc: &Document) -> Vec<Entry> {
    let Some(first) = doc
        .catalog()
        .ok()
        .and_then(|catalog| catalog.get(b"Outlines").ok())
        .and_then(|outlines| dictionary(doc, outlines))
        .and_then(|(_, outlines)| outlines.get(b"First").ok())
    else {
        return Vec::new();
    };
    let pages: HashMap<ObjectId, u32> = doc.get_pages().into_iter().map(|(number, id)| (id, number)).collect();
    let names = named_destinations(doc);
    let mut entries = Vec::new();
    let mut visited = HashSet::new();
    // Depth-first in document order: a node, its children, then its next
    // sibling; an explicit stack instead of recursion.
    let mut pending: Vec<(Object, usize)> = vec![(first.clone(), 1)];
    while let Some((node, level)) = pending.pop() {
        let Some((id, node)) = dictionary(doc, &node) else { continue };
        if id.is_some_and(|id| !visited.insert(id)) || visited.len() > MAX_NODES {
            continue;
        }
        let title = node.get(b"Title").ok().and_then(|t| doc.dereference(t).ok()).and_then(|(_, t)| t.as_str().ok());
        let page = destination(node).and_then(|dest| page_of(doc, dest, &names, &pages));
        if let (Some(title), Some(page)) = (title, page) {
            let title = decode_text(title);
            if !title.trim().is_empty() {
                entries.push(Entry { level, title: title.trim().to_owned(), page });
            }
        }
        if let Ok(next) = node.get(b"Next") {
            pending.push((next.clone(), level));
        }
        if let Ok(child) = node.get(b"First") {
            pending.push((child.clone(), (level + 1).min(MAX_DEPTH)));
        }
    }
    entries
}

fn dictionary<'a>(doc: &'a Document, object: &'a Object) -> Option<(Option<ObjectId>, &'a pdf_extract::Dictionary)> {
    let (id, object) = doc.dereference(object).ok()?;
    Some((id, object.as_dict().ok()?))
}

/// An entry's `/Dest`, or the `/D` of its GoTo action.
fn destination(node: &pdf_extract::Dictionary) -> Option<&Object> {
    node.get(b"Dest").ok().or_else(|| node.get(b"A").ok()?.as_dict().ok()?.get(b"D").ok())
}

/// A destination is `[page /XYZ ...]`, a dictionary with `/D`, or a name
/// to look up among the named destinations.
fn page_of(
    doc: &Document,
    dest: &Object,
    names: &HashMap<Vec<u8>, Object>,
    pages: &HashMap<ObjectId, u32>,
) -> Option<u32> {
    let mut dest = doc.dereference(dest).ok()?.1;
    for _ in 0..3 {
        match dest {
            Object::Array(items) => return pages.get(&items.first()?.as_reference().ok()?).copied(),
            Object::Dictionary(dict) => dest = doc.dereference(dict.get(b"D").ok()?).ok()?.1,
            Object::String(name, _) | Object::Name(name) => dest = doc.dereference(names.get(name)?).ok()?.1,
            _ => return None,
        }
    }
    None
}

/// Named destinations: the catalog's `/Dests` dictionary (PDF 1.1) and the
/// `/Names /Dests` name tree, walked with a visited set.
fn named_destinations(doc: &Document) -> HashMap<Vec<u8>, Object> {
    let mut names = HashMap::new();
    let Ok(catalog) = doc.catalog() else { return names };
    if let Some((_, dests)) = catalog.get(b"Dests").ok().and_then(|d| dictionary(doc, d)) {
        names.extend(dests.iter().map(|(name, dest)| (name.clone(), dest.clone())));
    }
    let tree = catalog.get(b"Names").ok().and_then(|n| dictionary(doc, n)).and_then(|(_, n)| n.get(b"Dests").ok());
    let mut pending: Vec<&Object> = tree.into_iter().collect();
    let mut visited = HashSet::new();
    while let Some(node) = pending.pop() {
        let Some((id, node)) = dictionary(doc, node) else { continue };
        if id.is_some_and(|id| !visited.insert(id)) || visited.len() > MAX_NODES {
            continue;
        }
        if let Some(pairs) = node.get(b"Names").ok().and_then(|n| doc.dereference(n).ok()?.1.as_array().ok()) {
            for pair in pairs.chunks_exact(2) {
                if let Ok(name) = pair[0].as_str() {
                    names.insert(name.to_vec(), pair[1].clone());
                }
            }
        }
        if let Some(kids) = node.get(b"Kids").ok().and_then(|k| doc.dereference(k).ok()?.1.as_array().ok()) {
            pending.extend(kids.iter());
        }
    }
    names
}

/// A PDF text string: UTF-16 with a byte-order mark, else PDFDocEncoding,
/// which matches Latin-1 for the letters titles use.
fn decode_text(bytes: &[u8]) -> String {
    match bytes {
        [0xfe, 0xff, rest @ ..] => {
            let units: Vec<u16> = rest.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        [0xef, 0xbb, 0xbf, rest @ ..] => String::from_utf8_lossy(rest).into_owned(),
        _ => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_decode_from_utf16_and_pdfdoc() {
        assert_eq!(decode_text(b"\xfe\xff\x00B\x00a\x00b"), "Bab");
        assert_eq!(decode_text(b"Caf\xe9"), "Café");
    }
}
