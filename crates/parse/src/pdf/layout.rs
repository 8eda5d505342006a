//! Reading order from positions: a page's text fragments are cut
//! recursively along the widest clean gap (XY-cut) — columns side by side
//! before their lines, regions above before regions below — and each
//! region's fragments are gathered into lines, left to right.

use super::Line;

/// A run of text on one line of a page, with its box in PDF user space
/// (points; `y` grows upwards).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fragment {
    pub(super) text: String,
    pub(super) left: f32,
    pub(super) right: f32,
    pub(super) bottom: f32,
    pub(super) top: f32,
    /// Font size in points.
    pub(super) size: f32,
    pub(super) bold: bool,
    /// Whether the text runs left to right across the page; rotated text
    /// (watermarks, a table's turned headers) is read after the rest.
    pub(super) upright: bool,
}

impl Fragment {
    fn height(&self) -> f32 {
        self.top - self.bottom
    }

    fn width(&self) -> f32 {
        self.right - self.left
    }
}

/// Pages with more fragments than this keep the engine's order: cutting
/// costs a sort per cut, and such pages are tables of numbers or glyph soup.
const MAX_CUT_FRAGMENTS: usize = 4000;
/// The narrowest gutter between columns, in font sizes.
const MIN_GUTTER_EMS: f32 = 1.0;
/// Columns hold lines, not labels: each side of a column cut must have
/// fragments at least this share of the region's width, typically, so that
/// a list's labels or a table's narrow cells are not read as a column.
const MIN_COLUMN_SHARE: f32 = 0.2;
/// A gap between lines taller than this many font sizes starts a paragraph.
const PARAGRAPH_GAP_EMS: f32 = 0.5;
/// Fragments of a line nearer than this many font sizes, apart or
/// overlapping, are parts of one word.
const TOUCHING_EMS: f32 = 0.15;

/// The fragments of a page as lines in reading order.
pub(super) fn reading_order(fragments: Vec<Fragment>) -> Vec<Line> {
    let (upright, rotated): (Vec<Fragment>, Vec<Fragment>) =
        fragments.into_iter().partition(|fragment| fragment.upright);
    let regions = if upright.len() > MAX_CUT_FRAGMENTS {
        vec![upright]
    } else {
        regions(upright)
    };
    let mut lines: Vec<PlacedLine> = Vec::new();
    for region in regions {
        lines.extend(lines_of(region));
    }
    lines.extend(rotated.into_iter().map(|fragment| placed(vec![fragment])));
    let edges = set_apart_edges(&lines);
    let mut previous: Option<&PlacedLine> = None;
    let mut read = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let starts_paragraph = previous.is_none_or(|previous| previous.ends_paragraph_before(line));
        read.push(Line {
            text: line.text.clone(),
            size: Some(line.size),
            bold: line.bold,
            starts_paragraph,
            at_edge: edges.contains(&index),
        });
        previous = Some(line);
    }
    read
}

/// The page's topmost and bottommost lines, each when set apart from the
/// rest by more than a line's height (running headers and footers are; a
/// table's header row continued from the previous page is not).
fn set_apart_edges(lines: &[PlacedLine]) -> Vec<usize> {
    let mut by_height: Vec<usize> = (0..lines.len()).collect();
    by_height.sort_by(|&a, &b| lines[b].top.total_cmp(&lines[a].top));
    let apart = |edge: usize, next: usize| {
        let (edge, next) = (&lines[edge], &lines[next]);
        let gap = (edge.bottom - next.top).max(next.bottom - edge.top);
        gap > edge.top - edge.bottom
    };
    match by_height[..] {
        [top, second, .., second_last, bottom] => [(top, second), (bottom, second_last)]
            .into_iter()
            .filter(|&(edge, next)| apart(edge, next))
            .map(|(edge, _)| edge)
            .collect(),
        _ => Vec::new(),
    }
}

/// The page cut into regions, in reading order. Iterative: a page of
/// single lines is cut once per line.
fn regions(fragments: Vec<Fragment>) -> Vec<Vec<Fragment>> {
    let mut done = Vec::new();
    // Regions still to cut, the next to read last.
    let mut pending = vec![fragments];
    while let Some(region) = pending.pop() {
        if region.len() < 2 {
            done.extend((!region.is_empty()).then_some(region));
            continue;
        }
        let cut = column_cut(&region).or_else(|| row_cut(&region));
        match cut {
            Some(Cut::Column(x)) => {
                let (left, right) = region.into_iter().partition(|f| f.right <= x);
                pending.push(right);
                pending.push(left);
            }
            Some(Cut::Row(y)) => {
                let (above, below) = region.into_iter().partition(|f| f.bottom >= y);
                pending.push(below);
                pending.push(above);
            }
            None => done.push(region),
        }
    }
    done
}

/// Where to cut a region: left of `x` / right of it, or above `y` / below it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cut {
    Column(f32),
    Row(f32),
}

/// The widest vertical gap crossing the whole region that is wide enough
/// to be a gutter and has column-like text on both sides.
fn column_cut(region: &[Fragment]) -> Option<Cut> {
    let em = median(region.iter().map(|f| f.size))?;
    let left = region.iter().map(|f| f.left).fold(f32::INFINITY, f32::min);
    let right = region
        .iter()
        .map(|f| f.right)
        .fold(f32::NEG_INFINITY, f32::max);
    let width = right - left;
    let mut spans: Vec<(f32, f32)> = region.iter().map(|f| (f.left, f.right)).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best: Option<(f32, f32)> = None;
    let mut reach = f32::NEG_INFINITY;
    for (start, end) in spans {
        let gap = start - reach;
        if reach.is_finite() && gap >= MIN_GUTTER_EMS * em {
            let x = reach + gap / 2.0;
            // Each side's fragments, only for a gap wider than the best so far.
            let column_like = |on_side: &dyn Fn(&Fragment) -> bool| {
                let widths: Vec<f32> = region
                    .iter()
                    .filter(|f| on_side(f))
                    .map(Fragment::width)
                    .collect();
                widths.len() >= 2
                    && median(widths.into_iter()).is_some_and(|w| w >= MIN_COLUMN_SHARE * width)
            };
            if best.is_none_or(|(_, widest)| gap > widest)
                && column_like(&|f| f.right <= x)
                && column_like(&|f| f.left >= x)
            {
                best = Some((x, gap));
            }
        }
        reach = reach.max(end);
    }
    best.map(|(x, _)| Cut::Column(x))
}

/// The widest horizontal gap crossing the whole region (the topmost of
/// equally wide ones).
fn row_cut(region: &[Fragment]) -> Option<Cut> {
    let mut spans: Vec<(f32, f32)> = region.iter().map(|f| (f.top, f.bottom)).collect();
    spans.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best: Option<(f32, f32)> = None;
    let mut floor = f32::INFINITY;
    for (top, bottom) in spans {
        let gap = floor - top;
        if floor.is_finite() && gap > 0.0 && best.is_none_or(|(_, widest)| gap > widest) {
            best = Some((top + gap / 2.0, gap));
        }
        floor = floor.min(bottom);
    }
    best.map(|(y, _)| Cut::Row(y))
}

/// A line of a region, with where it sits.
#[derive(Debug, Clone, PartialEq)]
struct PlacedLine {
    text: String,
    size: f32,
    bold: bool,
    top: f32,
    bottom: f32,
}

impl PlacedLine {
    /// Whether `next`, read after this line, starts a paragraph: it is
    /// above this one (another column), far below it, or in another font.
    fn ends_paragraph_before(&self, next: &PlacedLine) -> bool {
        let em = self.size.max(next.size);
        next.top > self.top
            || self.bottom - next.top > PARAGRAPH_GAP_EMS * em
            || (self.size - next.size).abs() > 0.1 * em
            || self.bold != next.bold
    }
}

/// A region's fragments gathered into lines: fragments overlapping
/// vertically by half the smaller height share a line, read left to right.
fn lines_of(mut region: Vec<Fragment>) -> Vec<PlacedLine> {
    region.sort_by(|a, b| b.top.total_cmp(&a.top));
    let mut lines: Vec<Vec<Fragment>> = Vec::new();
    for fragment in region {
        let same_line = lines.last().is_some_and(|line| {
            let (top, bottom) = line
                .iter()
                .fold((f32::NEG_INFINITY, f32::INFINITY), |(t, b), f| {
                    (t.max(f.top), b.min(f.bottom))
                });
            let overlap = top.min(fragment.top) - bottom.max(fragment.bottom);
            overlap >= 0.5 * fragment.height().min(top - bottom)
        });
        match lines.last_mut() {
            Some(line) if same_line => line.push(fragment),
            _ => lines.push(vec![fragment]),
        }
    }
    lines.into_iter().map(placed).collect()
}

fn placed(mut fragments: Vec<Fragment>) -> PlacedLine {
    fragments.sort_by(|a, b| a.left.total_cmp(&b.left));
    let mut text = String::new();
    let mut previous_right = f32::NEG_INFINITY;
    let mut bold_chars = 0;
    let mut chars = 0;
    for fragment in &fragments {
        // Fragments overlapping each other are parts of stacked lines (a
        // table's cells merged by a tall glyph), not one word.
        let gap = fragment.left - previous_right;
        let touching = gap.abs() < TOUCHING_EMS * fragment.size;
        if !text.is_empty() && !touching && !text.ends_with(' ') {
            text.push(' ');
        }
        text.push_str(&fragment.text);
        previous_right = fragment.right;
        let count = fragment.text.chars().count();
        chars += count;
        if fragment.bold {
            bold_chars += count;
        }
    }
    let size = fragments.iter().map(|f| f.size).fold(0.0, f32::max);
    PlacedLine {
        text,
        size,
        bold: bold_chars * 2 > chars,
        top: fragments
            .iter()
            .map(|f| f.top)
            .fold(f32::NEG_INFINITY, f32::max),
        bottom: fragments
            .iter()
            .map(|f| f.bottom)
            .fold(f32::INFINITY, f32::min),
    }
}

fn median(values: impl Iterator<Item = f32>) -> Option<f32> {
    let mut values: Vec<f32> = values.collect();
    values.sort_by(f32::total_cmp);
    values.get(values.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10 pt fragment whose baseline is at `y`.
    fn fragment(text: &str, left: f32, right: f32, y: f32) -> Fragment {
        Fragment {
            text: text.to_owned(),
            left,
            right,
            bottom: y - 2.0,
            top: y + 8.0,
            size: 10.0,
            bold: false,
            upright: true,
        }
    }

    fn texts(lines: &[Line]) -> Vec<&str> {
        lines.iter().map(|line| line.text.as_str()).collect()
    }

    #[test]
    fn columns_are_read_one_after_the_other_whatever_the_drawing_order() {
        let mut fragments = Vec::new();
        for row in 0..4 {
            let y = 700.0 - 12.0 * row as f32;
            fragments.push(fragment(&format!("right {row}"), 320.0, 540.0, y));
            fragments.push(fragment(&format!("left {row}"), 72.0, 290.0, y));
        }
        fragments.push(fragment("A title across both", 72.0, 540.0, 740.0));
        let mut watermark = fragment("DRAFT", 100.0, 500.0, 300.0);
        (watermark.top, watermark.upright) = (700.0, false);
        fragments.push(watermark);
        let lines = reading_order(fragments);
        assert_eq!(
            texts(&lines),
            [
                "A title across both",
                "left 0",
                "left 1",
                "left 2",
                "left 3",
                "right 0",
                "right 1",
                "right 2",
                "right 3",
                "DRAFT"
            ]
        );
        assert!(lines[5].starts_paragraph, "a new column starts a paragraph");
        assert!(!lines[2].starts_paragraph);
    }

    #[test]
    fn labels_beside_their_descriptions_stay_on_their_lines() {
        let mut fragments = Vec::new();
        for (row, (label, description)) in [
            ("-a", "show all"),
            ("-l", "long listing"),
            ("-r", "reverse"),
        ]
        .into_iter()
        .enumerate()
        {
            let y = 700.0 - 24.0 * row as f32;
            fragments.push(fragment(label, 72.0, 84.0, y));
            fragments.push(fragment(description, 108.0, 400.0, y));
        }
        assert_eq!(
            texts(&reading_order(fragments)),
            ["-a show all", "-l long listing", "-r reverse"]
        );
    }

    #[test]
    fn words_placed_one_by_one_keep_their_spaces() {
        let fragments = vec![
            fragment("placed", 72.0, 100.0, 700.0),
            fragment("one", 103.0, 118.0, 700.0),
            fragment("by", 121.0, 131.0, 700.0),
            fragment("one", 134.0, 149.0, 700.0),
            fragment("ly", 149.2, 157.0, 700.0),
        ];
        assert_eq!(texts(&reading_order(fragments)), ["placed one by onely"]);
    }

    #[test]
    fn overlapping_fragments_on_one_line_are_separate_words() {
        // A cell's last line and the small type below it, one line since
        // the row's tall glyphs reach both.
        let mut tall = fragment("\u{1000}\u{1037}", 400.0, 420.0, 700.0);
        (tall.bottom, tall.top) = (690.0, 720.0);
        let fragments = vec![
            fragment("Language set to Sgaw", 262.0, 360.0, 700.0),
            fragment("XeTeX:", 271.0, 287.0, 697.0),
            tall,
        ];
        let lines = reading_order(fragments);
        assert_eq!(
            texts(&lines),
            ["Language set to Sgaw XeTeX: \u{1000}\u{1037}"]
        );
    }

    #[test]
    fn lines_set_apart_at_the_top_and_bottom_are_edges() {
        let lines = reading_order(vec![
            fragment("Running header", 72.0, 300.0, 760.0),
            fragment("Body line one", 72.0, 300.0, 700.0),
            fragment("Body line two", 72.0, 300.0, 688.0),
            fragment("Body line three", 72.0, 300.0, 676.0),
            fragment("7", 290.0, 300.0, 40.0),
        ]);
        let edges: Vec<&str> = lines
            .iter()
            .filter(|line| line.at_edge)
            .map(|line| line.text.as_str())
            .collect();
        assert_eq!(edges, ["Running header", "7"]);
        let table = reading_order(vec![
            fragment("Code Name", 72.0, 300.0, 700.0),
            fragment("1 one", 72.0, 300.0, 688.0),
            fragment("2 two", 72.0, 300.0, 676.0),
        ]);
        assert!(
            table.iter().all(|line| !line.at_edge),
            "rows at normal spacing"
        );
    }

    #[test]
    fn gaps_and_font_changes_start_paragraphs() {
        let mut heading = fragment("Overview", 72.0, 140.0, 740.0);
        heading.bold = true;
        let lines = reading_order(vec![
            heading,
            fragment("first line", 72.0, 300.0, 724.0),
            fragment("second line", 72.0, 300.0, 712.0),
            fragment("after a gap", 72.0, 300.0, 680.0),
        ]);
        let starts: Vec<bool> = lines.iter().map(|line| line.starts_paragraph).collect();
        assert_eq!(starts, [true, true, false, true]);
    }
}
