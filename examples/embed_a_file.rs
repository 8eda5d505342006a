//! The stages without a worker or any service: parse one file, chunk it in
//! the model's tokens, and embed the chunks with ONNX Runtime.
//!
//! ```sh
//! cargo run --example embed_a_file -- fixtures/corpus/man-ls.1.html
//! ```
//!
//! Uses `pipelines/default.toml`'s chunking and model (installed by `make setup`).

use docpipe_chunk::Chunker;
use docpipe_core::{DocumentId, PipelineConfig, TenantId};
use docpipe_embed::{BatchLimits, Embedder as _, ModelDir, OnnxEmbedder};
use docpipe_parse::DocumentParser;
use docpipe_pipeline::pipeline_version;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: embed_a_file FILE (a PDF or HTML document)"))?;
    let config = PipelineConfig::load("pipelines/default.toml".as_ref())?;
    let model = ModelDir::open(&config.model.dir)?;

    let bytes = std::fs::read(&path)?;
    let limits = &config.limits;
    let parsed = DocumentParser::for_pipeline(&config)?.parse(&bytes, None)?;
    println!(
        "{path}: title {:?}, {} blocks, {} bytes of text",
        parsed.title,
        parsed.blocks.len(),
        parsed.text.len()
    );

    let chunker = Chunker::new(
        model.tokenizer()?,
        &config.chunking,
        limits.max_chunks_per_document,
    )?;
    let version = pipeline_version(&config, &model)?;
    let chunks = chunker.chunk(
        &parsed,
        &TenantId::new("example")?,
        &DocumentId::new(path.clone())?,
        &version,
    )?;
    let embedder = OnnxEmbedder::load(&model, BatchLimits::new(32, 2048), 0)?;
    let texts: Vec<&str> = chunks
        .iter()
        .map(|chunk| chunk.embed_text.as_str())
        .collect();
    let vectors = embedder.embed_documents(&texts)?;
    for (chunk, vector) in chunks.iter().zip(&vectors) {
        println!(
            "chunk {:>2} (page {:?}, {} › {}): {} dimensions, {:.60}…",
            chunk.ordinal,
            chunk.page,
            parsed.title.as_deref().unwrap_or("untitled"),
            chunk.heading_path.join(" › "),
            vector.len(),
            chunk.text.replace('\n', " ")
        );
    }
    println!(
        "{} chunks embedded by {} ({version})",
        chunks.len(),
        embedder.model_name()
    );
    Ok(())
}
