//! The passage index: tantivy with BM25F over a passage's section heading
//! and its text. Heading and text are two fields of one passage with their
//! own weights: the heading's words are counted `HEADING_WEIGHT` times
//! alongside the text's, and the passage's length is the weighted sum of
//! both, before BM25's saturation (Robertson, Zaragoza and Taylor's simple
//! BM25F). A heading word is strong evidence but cannot swamp the text the
//! way adding two separate BM25 scores lets a short heading field do.
//! What a question becomes is decided in `query`.

use super::analyzer;
use super::chunk::Chunk;
use super::query::{self, Synonyms, Words};
use super::Passage;
use std::path::Path;
use tantivy::collector::TopDocs;
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, STORED, STRING};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocAddress, Index, IndexReader, ReloadPolicy, Searcher, TantivyDocument};

const WRITER_MEMORY: usize = 32 * 1024 * 1024;
/// How many times a passage's own heading's words count against the
/// text's once: the section a passage belongs to says a lot about it in
/// few words. Since headings come from the PDF outline and type sizes
/// instead of guesses, they can be trusted this much: 3 to 6 measured
/// alike on the unseen questions (recall@4 0.84–0.86), 2 lower (0.82).
const HEADING_WEIGHT: usize = 4;
/// The business's own synonym groups, kept with the index they were built
/// with so that reopening it searches the same way.
const SYNONYMS_FILE: &str = "synonyms.txt";
/// The field holding each passage's number.
const NUMBER: &str = "number";

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
    /// Heading and text, weighted: what questions are matched against.
    content: Field,
    text: Field,
    heading: Field,
    title: Field,
    file: Field,
    page: Field,
    number: Field,
}

pub struct PassageIndex {
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    synonyms: Synonyms,
    /// Where each passage, by its number, is in the index.
    addresses: Vec<DocAddress>,
    /// Each document's passage number, by segment and document id.
    numbers: Vec<Vec<u32>>,
}

/// A passage BM25 found: its number (its place in the chunks the index was
/// built from, which is also its vector's place) and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    pub passage: u32,
    pub score: f32,
}

impl PassageIndex {
    /// An index held in memory, for evaluations and benchmarks.
    /// The standard analyzer's index is the plain-tantivy baseline: no
    /// synonyms either.
    pub fn build_in_memory(chunks: &[Chunk], analyzer: Analyzer) -> tantivy::Result<Self> {
        let (schema, fields) = schema(analyzer);
        let own_synonyms = (analyzer == Analyzer::Indonesian).then_some("");
        Self::fill(Index::create_in_ram(schema), fields, chunks, own_synonyms)
    }

    /// `own_synonyms`: the business's groups, added to the built-in ones.
    pub(crate) fn build_in_dir(dir: &Path, chunks: &[Chunk], own_synonyms: &str) -> tantivy::Result<Self> {
        let (schema, fields) = schema(Analyzer::Indonesian);
        std::fs::write(dir.join(SYNONYMS_FILE), own_synonyms)?;
        Self::fill(Index::create_in_dir(dir, schema)?, fields, chunks, Some(own_synonyms))
    }

    pub(crate) fn open(dir: &Path) -> tantivy::Result<Self> {
        let index = Index::open_in_dir(dir)?;
        let own_synonyms = std::fs::read_to_string(dir.join(SYNONYMS_FILE))?;
        let schema = index.schema();
        let field = |name| schema.get_field(name);
        let fields = Fields {
            content: field("content")?,
            text: field("text")?,
            heading: field("heading")?,
            title: field("title")?,
            file: field("file")?,
            page: field("page")?,
            number: field(NUMBER)?,
        };
        Self::ready(index, fields, Some(&own_synonyms))
    }

    fn fill(index: Index, fields: Fields, chunks: &[Chunk], own_synonyms: Option<&str>) -> tantivy::Result<Self> {
        register(&index);
        let mut writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
        for (number, chunk) in (0u64..).zip(chunks) {
            let mut doc = TantivyDocument::default();
            doc.add_u64(fields.number, number);
            if let Some(heading) = &chunk.heading {
                // The section's own title counts fully; the sections around
                // it say less about this passage in particular.
                let (outer, own) = heading.rsplit_once(" › ").unwrap_or(("", heading));
                for _ in 0..HEADING_WEIGHT {
                    doc.add_text(fields.content, own);
                }
                doc.add_text(fields.content, outer);
            }
            doc.add_text(fields.content, &chunk.text);
            doc.add_text(fields.text, &chunk.text);
            doc.add_text(fields.heading, chunk.heading.as_deref().unwrap_or(""));
            doc.add_text(fields.title, &chunk.title);
            doc.add_text(fields.file, &chunk.file);
            doc.add_u64(fields.page, chunk.page.map_or(0, u64::from));
            writer.add_document(doc)?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        Self::ready(index, fields, own_synonyms)
    }

    /// `own_synonyms` is `None` for an index searched without any.
    fn ready(index: Index, fields: Fields, own_synonyms: Option<&str>) -> tantivy::Result<Self> {
        register(&index);
        let analyzer = index.tokenizer_for_field(fields.content)?;
        let synonyms = own_synonyms.map(|own| Synonyms::parse([query::BUILT_IN, own], &analyzer)).unwrap_or_default();
        let reader: IndexReader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let (addresses, numbers) = passage_numbers(&reader.searcher())?;
        Ok(Self { reader, fields, analyzer, synonyms, addresses, numbers })
    }

    pub fn passage_count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The `limit` best passages for `question`, best first.
    pub fn search(&self, question: &str, limit: usize) -> tantivy::Result<Vec<Passage>> {
        let hits = self.hits(question, limit)?;
        self.passages(&hits)
    }

    /// Like [`PassageIndex::search`], but only the passages' numbers (their
    /// order in the build) and scores: for fusing with other rankings
    /// before reading any passage.
    pub(crate) fn hits(&self, question: &str, limit: usize) -> tantivy::Result<Vec<Hit>> {
        let words = Words::of(question, &self.analyzer);
        if words.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let query = query::build(self.fields.content, &words, &self.synonyms);
        let top = self.reader.searcher().search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        Ok(top
            .into_iter()
            .filter_map(|(score, address)| {
                let number = self.numbers.get(address.segment_ord as usize)?.get(address.doc_id as usize)?;
                Some(Hit { passage: *number, score })
            })
            .collect())
    }

    /// The passages of `hits`, in order; numbers this index does not have
    /// are left out.
    pub(crate) fn passages(&self, hits: &[Hit]) -> tantivy::Result<Vec<Passage>> {
        let searcher = self.reader.searcher();
        let mut passages = Vec::with_capacity(hits.len());
        for hit in hits {
            if let Some(address) = self.addresses.get(hit.passage as usize) {
                let doc: TantivyDocument = searcher.doc(*address)?;
                passages.push(self.passage(&doc, hit.score));
            }
        }
        Ok(passages)
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

/// Maps between passage numbers and where tantivy keeps each passage, both
/// ways. The reader never reloads, so they hold for the index's life.
fn passage_numbers(searcher: &Searcher) -> tantivy::Result<(Vec<DocAddress>, Vec<Vec<u32>>)> {
    let mut addresses = vec![DocAddress::new(0, 0); usize::try_from(searcher.num_docs()).unwrap_or(0)];
    let mut numbers = Vec::new();
    for (segment, reader) in (0u32..).zip(searcher.segment_readers()) {
        let column = reader.fast_fields().u64(NUMBER)?;
        let mut of_segment = vec![u32::MAX; reader.max_doc() as usize];
        for doc in reader.doc_ids_alive() {
            let number = column.first(doc).and_then(|n| u32::try_from(n).ok()).unwrap_or(u32::MAX);
            if let Some(slot) = addresses.get_mut(number as usize) {
                *slot = DocAddress::new(segment, doc);
                of_segment[doc as usize] = number;
            }
        }
        numbers.push(of_segment);
    }
    Ok((addresses, numbers))
}

fn register(index: &Index) {
    index.tokenizers().register(analyzer::INDONESIAN, analyzer::indonesian());
}

fn schema(analyzer: Analyzer) -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(analyzer.name())
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let fields = Fields {
        content: builder.add_text_field("content", TextOptions::default().set_indexing_options(indexing)),
        text: builder.add_text_field("text", STORED),
        heading: builder.add_text_field("heading", STORED),
        title: builder.add_text_field("title", STORED),
        file: builder.add_text_field("file", STRING | STORED),
        page: builder.add_u64_field("page", STORED | FAST),
        number: builder.add_u64_field(NUMBER, FAST),
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
        PassageIndex::build_in_dir(dir.path(), &sample(), "").unwrap();
        let index = PassageIndex::open(dir.path()).unwrap();
        let found = index.search("pengaduan lewat apa", 1).unwrap();
        assert_eq!(found[0].file, "b.md");
        assert_eq!(found[0].page, None);
    }
}
