//! The passage index: tantivy with BM25 over passage text and section
//! headings. Questions are never parsed as query syntax: they go through the
//! same analyzer as the documents and become plain term lookups, so nothing
//! a person types can change what the query means.

use super::analyzer;
use super::chunk::Chunk;
use super::Passage;
use std::collections::HashSet;
use std::path::Path;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, STORED, STRING};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

const WRITER_MEMORY: usize = 32 * 1024 * 1024;
/// Headings say what a whole section is about, so they count, but less than
/// the words of the passage itself.
const HEADING_BOOST: f32 = 0.5;

/// Which analyzer turns text into terms. `Standard` is tantivy's default
/// (split, lower-case), kept for the retrieval evaluation's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Analyzer {
    Indonesian,
    Standard,
}

impl Analyzer {
    fn name(self) -> &'static str {
        match self {
            Analyzer::Indonesian => analyzer::INDONESIAN,
            Analyzer::Standard => "default",
        }
    }
}

#[derive(Clone, Copy)]
struct Fields {
    text: Field,
    heading: Field,
    title: Field,
    file: Field,
    page: Field,
}

pub struct PassageIndex {
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
}

impl PassageIndex {
    /// An index held in memory, for evaluations and benchmarks.
    pub fn build_in_memory(chunks: &[Chunk], analyzer: Analyzer) -> tantivy::Result<Self> {
        let (schema, fields) = schema(analyzer);
        Self::fill(Index::create_in_ram(schema), fields, chunks)
    }

    pub(crate) fn build_in_dir(dir: &Path, chunks: &[Chunk]) -> tantivy::Result<Self> {
        let (schema, fields) = schema(Analyzer::Indonesian);
        Self::fill(Index::create_in_dir(dir, schema)?, fields, chunks)
    }

    pub(crate) fn open(dir: &Path) -> tantivy::Result<Self> {
        let index = Index::open_in_dir(dir)?;
        let schema = index.schema();
        let field = |name| schema.get_field(name);
        let fields = Fields {
            text: field("text")?,
            heading: field("heading")?,
            title: field("title")?,
            file: field("file")?,
            page: field("page")?,
        };
        Self::ready(index, fields)
    }

    fn fill(index: Index, fields: Fields, chunks: &[Chunk]) -> tantivy::Result<Self> {
        register(&index);
        let mut writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
        for chunk in chunks {
            let mut doc = TantivyDocument::default();
            doc.add_text(fields.text, &chunk.text);
            doc.add_text(fields.heading, chunk.heading.as_deref().unwrap_or(""));
            doc.add_text(fields.title, &chunk.title);
            doc.add_text(fields.file, &chunk.file);
            doc.add_u64(fields.page, chunk.page.map_or(0, u64::from));
            writer.add_document(doc)?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        Self::ready(index, fields)
    }

    fn ready(index: Index, fields: Fields) -> tantivy::Result<Self> {
        register(&index);
        let analyzer = index.tokenizer_for_field(fields.text)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Self { reader, fields, analyzer })
    }

    pub fn passage_count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The `limit` best passages for `question`, best first.
    pub fn search(&self, question: &str, limit: usize) -> tantivy::Result<Vec<Passage>> {
        let terms = self.terms(question);
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len() * 2);
        for word in &terms {
            let text = Term::from_field_text(self.fields.text, word);
            clauses.push((Occur::Should, Box::new(TermQuery::new(text, IndexRecordOption::WithFreqs))));
            let heading =
                TermQuery::new(Term::from_field_text(self.fields.heading, word), IndexRecordOption::WithFreqs);
            clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(heading), HEADING_BOOST))));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        top.into_iter()
            .map(|(score, address)| {
                let doc: TantivyDocument = searcher.doc(address)?;
                Ok(self.passage(&doc, score))
            })
            .collect()
    }

    fn terms(&self, question: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(question);
        let mut seen = HashSet::new();
        let mut terms = Vec::new();
        while stream.advance() {
            let text = &stream.token().text;
            if seen.insert(text.clone()) {
                terms.push(text.clone());
            }
        }
        terms
    }

    fn passage(&self, doc: &TantivyDocument, score: f32) -> Passage {
        let text_of = |field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let page = doc.get_first(self.fields.page).and_then(|v| v.as_u64()).filter(|p| *p > 0);
        let heading = text_of(self.fields.heading);
        Passage {
            title: text_of(self.fields.title),
            file: text_of(self.fields.file),
            page: page.and_then(|p| u32::try_from(p).ok()),
            heading: (!heading.is_empty()).then_some(heading),
            text: text_of(self.fields.text),
            score,
        }
    }
}

fn register(index: &Index) {
    index.tokenizers().register(analyzer::INDONESIAN, analyzer::indonesian());
}

fn schema(analyzer: Analyzer) -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let indexing =
        TextFieldIndexing::default().set_tokenizer(analyzer.name()).set_index_option(IndexRecordOption::WithFreqs);
    let searchable = TextOptions::default().set_indexing_options(indexing).set_stored();
    let fields = Fields {
        text: builder.add_text_field("text", searchable.clone()),
        heading: builder.add_text_field("heading", searchable),
        title: builder.add_text_field("title", STORED),
        file: builder.add_text_field("file", STRING | STORED),
        page: builder.add_u64_field("page", STORED | FAST),
    };
    (builder.build(), fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(file: &str, page: Option<u32>, heading: Option<&str>, text: &str) -> Chunk {
        Chunk { file: file.into(), title: "Panduan".into(), page, heading: heading.map(Into::into), text: text.into() }
    }

    fn sample() -> Vec<Chunk> {
        vec![
            chunk("a.pdf", Some(3), Some("Biaya"), "Biaya pendaftaran adalah Rp 50.000 dibayar di loket."),
            chunk("a.pdf", Some(4), Some("Jam buka"), "Kantor buka Senin sampai Jumat pukul 08.00."),
            chunk("b.md", None, None, "Pengaduan dapat disampaikan melalui SP4N-LAPOR."),
        ]
    }

    #[test]
    fn finds_the_passage_that_shares_the_question_words_with_its_source() {
        let index = PassageIndex::build_in_memory(&sample(), Analyzer::Indonesian).unwrap();
        let found = index.search("berapa biaya pendaftaran?", 2).unwrap();
        assert_eq!(found[0].file, "a.pdf");
        assert_eq!(found[0].page, Some(3));
        assert_eq!(found[0].heading.as_deref(), Some("Biaya"));
        assert_eq!(found[0].title, "Panduan");
        assert!(found[0].score > 0.0);
        assert_eq!(index.passage_count(), 3);
    }

    #[test]
    fn query_syntax_in_a_question_is_just_words() {
        let index = PassageIndex::build_in_memory(&sample(), Analyzer::Standard).unwrap();
        for hostile in ["text:biaya AND NOT", "\"unclosed", "(((", "*", "biaya^1000 OR file:b.md", ""] {
            assert!(index.search(hostile, 4).is_ok(), "{hostile}");
        }
        assert!(index.search("???", 4).unwrap().is_empty());
    }

    #[test]
    fn an_index_written_to_disk_opens_again_with_its_analyzer() {
        let dir = tempfile::tempdir().unwrap();
        PassageIndex::build_in_dir(dir.path(), &sample()).unwrap();
        let index = PassageIndex::open(dir.path()).unwrap();
        let found = index.search("pengaduan lewat apa", 1).unwrap();
        assert_eq!(found[0].file, "b.md");
        assert_eq!(found[0].page, None);
    }
}
