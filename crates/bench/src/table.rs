//! The bench report as a table for terminals.

use crate::{BenchReport, EmbedRun, Memory, median};

impl BenchReport {
    /// The report as a table for terminals.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut line = |label: &str, value: String| {
            let _ = writeln!(out, "{label:<52} {value}");
        };
        line(
            "docpipe bench:",
            format!(
                "{} documents ({:.1} MB, {} chunks), {} CPUs, {}",
                self.documents,
                self.corpus_bytes as f64 / 1e6,
                self.chunks,
                self.cpus,
                self.isa
            ),
        );
        line("", String::new());
        line("parse", format!("{:>9.2} MB/s", self.parse_mb_per_s));
        for sample in &self.formats {
            let pages = sample
                .pages_per_s
                .map_or_else(String::new, |rate| format!(" {rate:>8.0} pages/s"));
            line(
                &format!(
                    "  parse {} ({}, {} B)",
                    sample.format, sample.file, sample.bytes
                ),
                format!("{:>9.2} MB/s{pages}", sample.mb_per_s),
            );
        }
        let ocr = self.ocr_pages_per_s.map_or_else(
            || "not measured (Tesseract is not installed)".to_owned(),
            |rate| format!("{rate:>9.2} pages/s"),
        );
        line("  OCR of a scanned page (300 dpi)", ocr);
        line("chunk", format!("{:>9.0} chunks/s", self.chunk_per_s));
        let embed_line = |line: &mut dyn FnMut(&str, String), run: &EmbedRun| {
            line(
                &format!("embed only, {}, {}", run.model, run.layout()),
                format!(
                    "{:>9.1} chunks/s {:>8.0} tokens/s {:>5.1} % padding",
                    run.chunks_per_s,
                    run.tokens_per_s,
                    run.padding * 100.0
                ),
            );
        };
        for run in &self.embed {
            embed_line(&mut line, run);
        }
        line(
            "write Milvus",
            format!("{:>9.0} chunks/s", self.milvus_chunks_per_s),
        );
        line(
            "write tantivy",
            format!("{:>9.0} chunks/s", self.tantivy_chunks_per_s),
        );
        for (number, round) in self.rounds.iter().enumerate() {
            embed_line(&mut line, &self.brackets[number]);
            line(
                &format!("end to end through RabbitMQ, round {}", number + 1),
                format!(
                    "{:>9.1} chunks/s {:>8.2} docs/s   {:>5.1} % padding   {:.2} x the passes around it",
                    round.chunks_per_s,
                    round.documents_per_s,
                    round.padding * 100.0,
                    round.vs_embed_only
                ),
            );
        }
        if let Some(last) = self.brackets.last() {
            embed_line(&mut line, last);
        }
        line("", String::new());
        let ratios = self.rounds.iter().map(|round| round.vs_embed_only);
        let lowest = ratios.clone().min_by(f64::total_cmp).unwrap_or(f64::NAN);
        let highest = ratios.max_by(f64::total_cmp).unwrap_or(f64::NAN);
        line(
            &format!(
                "end to end / embed only, median of {} round(s)",
                self.rounds.len()
            ),
            format!(
                "{:.3}  (target >= 0.90; rounds {lowest:.3} to {highest:.3}; {:.2} once the pipeline is full; {:.2} against the fastest embed-only pass)",
                self.end_to_end_vs_embed_only,
                self.sustained_vs_embed_only,
                self.end_to_end_vs_fastest_embed_only
            ),
        );
        if let Some(ratio) = self.int8_vs_fp32 {
            line(
                "int8 / fp32 embed only (all threads)",
                format!("{ratio:.2}  (target >= 1.40)"),
            );
        }
        let start = |memory: &Memory| memory.at_start_mib.unwrap_or(f64::NAN);
        if let Some(peak) = self.rss.peak_mib {
            line(
                "peak RSS while ingesting end to end",
                format!(
                    "{peak:.0} MiB  (target < 1024; {:.0} MiB before the first document)",
                    start(&self.rss)
                ),
            );
            if let (Some(documents), Some(ratio)) =
                (self.scaled_documents, self.scaled_vs_fresh_peak)
            {
                let peaks = |runs: &[Memory]| {
                    let peaks: Vec<String> = runs
                        .iter()
                        .map(|run| format!("{:.0}", run.peak_mib.unwrap_or(f64::NAN)))
                        .collect();
                    peaks.join(", ")
                };
                let median_start =
                    |runs: &[Memory]| median(runs.iter().filter_map(|run| run.at_start_mib));
                line(
                    &format!("peak RSS, {} then {documents} documents", self.documents),
                    format!(
                        "{ratio:.3} x  (target 0.90 to 1.10; the median peaks of {} fresh processes each, run alternately)",
                        self.fresh_rss.len()
                    ),
                );
                line(
                    "",
                    format!(
                        "peaks {} then {} MiB (from {:.0} and {:.0} MiB before the first document)",
                        peaks(&self.fresh_rss),
                        peaks(&self.scaled_rss),
                        median_start(&self.fresh_rss),
                        median_start(&self.scaled_rss)
                    ),
                );
            }
        }
        if let Some(stall) = &self.stall {
            line(
                &format!("small documents beside a {}-page PDF", stall.long_pdf_pages),
                format!(
                    "latency p50 {:.2} s, p95 {:.2} s (alone: p50 {:.2} s, p95 {:.2} s)",
                    stall.beside_p50_s, stall.beside_p95_s, stall.alone_p50_s, stall.alone_p95_s
                ),
            );
            line(
                "",
                format!(
                    "the PDF: {} chunks in {:.1} s; {} of {} small documents finished before it",
                    stall.long_pdf_chunks,
                    stall.long_pdf_seconds,
                    stall.finished_before_long_pdf,
                    stall.small_documents
                ),
            );
        }
        line(
            "tracing off: spans per document cost",
            format!(
                "{:.2} µs = {:.5} % of its end-to-end time",
                self.tracing_us_per_document,
                self.tracing_share_of_end_to_end * 100.0
            ),
        );
        out
    }
}
