//! Tables: sized to the terminal for people, whole as CSV for spreadsheets and scripts.
//!
//! One contract for every command that prints rows (README, "Output"): `--format table`
//! (the default) fits the terminal's width, cutting long values with an ellipsis and,
//! when even that is too wide, leaving out the last columns with a note; `--wide` prints
//! every column and whole values; `--format csv` prints every column and whole values
//! as RFC 4180 CSV with a header row; `--json` (or `--format json`) prints one JSON
//! document, which each command builds from its own records.

use clap::ValueEnum;

/// How a command prints what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Columns sized to the terminal (see `--wide`).
    Table,
    /// Every column and whole values, with a header row.
    Csv,
    /// One JSON document: an array for a list, an object for one thing.
    Json,
}

/// The output options of every command that prints rows.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// table (fits the terminal), csv (every column, whole values) or json (one document).
    #[arg(long, value_enum, default_value_t = Format::Table, value_name = "FORMAT")]
    format: Format,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Tables: every column and whole values, however wide the terminal.
    #[arg(long)]
    wide: bool,
}

impl OutputArgs {
    /// Output options built by a command with formats of its own (`access`).
    pub fn new(format: Format, wide: bool) -> OutputArgs {
        OutputArgs {
            format,
            json: false,
            wide,
        }
    }

    /// The format asked for.
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }

    /// What a missing value prints as: `-` for a reader of the table, an empty field in
    /// CSV (and JSON), as for every other missing value.
    pub fn missing(&self) -> &'static str {
        if self.format() == Format::Table {
            "-"
        } else {
            ""
        }
    }

    /// Whether values are printed whole (CSV, JSON, `--wide`), so a command may shorten
    /// what is long by nature (a sha256) only when they are not.
    pub fn whole_values(&self) -> bool {
        self.wide || self.format() != Format::Table
    }

    /// How wide a table may be: the terminal's width on a terminal, else `$COLUMNS` when
    /// set, else unlimited (a table piped into `grep` keeps whole values).
    fn width(&self) -> Option<usize> {
        if self.wide {
            return None;
        }
        if let Some((_, cols)) = console::Term::stdout().size_checked() {
            return Some(usize::from(cols));
        }
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .filter(|&c: &usize| c > 0)
    }
}

/// Rows under a header.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Columns never cut (a timestamp cut is no timestamp).
    whole: Vec<bool>,
}

/// The narrowest a cut column gets: its header, but at least this.
const MIN_COLUMN: usize = 6;

/// A column no wider than this is never cut: a status or a count cut saves little and
/// reads as nothing.
const SHORT_COLUMN: usize = 12;

impl Table {
    /// An empty table with these column names.
    pub fn new<S: AsRef<str>>(header: &[S]) -> Table {
        Table {
            header: header.iter().map(|h| h.as_ref().to_string()).collect(),
            rows: Vec::new(),
            whole: vec![false; header.len()],
        }
    }

    /// Never cuts these columns (they may still be left out when nothing else fits).
    pub fn keep_whole(mut self, columns: &[&str]) -> Table {
        for (h, whole) in self.header.iter().zip(&mut self.whole) {
            *whole |= columns.contains(&h.as_str());
        }
        self
    }

    /// Adds a row; missing cells are empty.
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as `out` asks (table or CSV; JSON is the caller's). A table without
    /// rows prints nothing (the caller says why); CSV prints its header.
    pub fn print(&self, out: &OutputArgs) -> anyhow::Result<()> {
        use std::io::Write as _;
        let text = match out.format() {
            Format::Csv => self.csv()?,
            _ if self.is_empty() => return Ok(()),
            _ => self.render(out.width()),
        };
        std::io::stdout().lock().write_all(text.as_bytes())?;
        Ok(())
    }

    /// This table without the columns at `indexes`.
    fn without(&self, indexes: &[usize]) -> Table {
        let keep = |i: &usize| !indexes.contains(i);
        let pick = |row: &Vec<String>| -> Vec<String> {
            row.iter()
                .enumerate()
                .filter(|(i, _)| keep(i))
                .map(|(_, c)| c.clone())
                .collect()
        };
        Table {
            header: pick(&self.header),
            rows: self.rows.iter().map(pick).collect(),
            whole: (0..self.whole.len())
                .filter(keep)
                .map(|i| self.whole[i])
                .collect(),
        }
    }

    /// RFC 4180 CSV: a header row, then every row whole.
    pub fn csv(&self) -> anyhow::Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.header)?;
        for row in &self.rows {
            w.write_record(row)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }

    /// Columns as wide as their widest cell, two spaces apart, numbers right-aligned;
    /// within `width` characters when given (see the module's documentation).
    pub fn render(&self, width: Option<usize>) -> String {
        let rows: Vec<Vec<String>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|row| row.iter().map(|c| one_line(c)).collect())
            .collect();
        let mut widths = vec![0usize; self.header.len()];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut shown = widths.len();
        if let Some(limit) = width {
            // Too wide: first leave out the columns with nothing in them, silently.
            let natural = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
            let empty: Vec<usize> = (0..widths.len())
                .filter(|&i| self.rows.iter().all(|r| r[i].trim().is_empty()))
                .collect();
            if natural > limit && !empty.is_empty() && empty.len() < widths.len() {
                return self.without(&empty).render(width);
            }
            let floor: Vec<usize> = widths
                .iter()
                .zip(&self.header)
                .zip(&self.whole)
                .map(|((&w, h), &whole)| {
                    if whole || w <= SHORT_COLUMN {
                        w
                    } else {
                        w.min(h.chars().count().max(MIN_COLUMN))
                    }
                })
                .collect();
            shown = fit(&mut widths, &floor, limit);
        }
        let mut out = String::new();
        for row in &rows {
            let cells: Vec<String> = row[..shown]
                .iter()
                .zip(&widths)
                .map(|(cell, &w)| {
                    let cell = cut(cell, w);
                    if is_number(&cell) {
                        format!("{cell:>w$}")
                    } else {
                        format!("{cell:<w$}")
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        let hidden = &self.header[shown..];
        if !hidden.is_empty() {
            out.push_str(&format!(
                "({} more column{} not shown: {}; --wide or --format csv shows them)\n",
                hidden.len(),
                if hidden.len() == 1 { "" } else { "s" },
                hidden.join(", ")
            ));
        }
        out
    }
}

/// Narrows `widths` to fit `limit` characters with two-space gaps: the widest column is
/// cut first, none below its `floor`; if that is not enough, the last columns are left
/// out. Returns how many columns are shown (at least one).
fn fit(widths: &mut [usize], floor: &[usize], limit: usize) -> usize {
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    let mut shown = widths.len();
    while shown > 1 && total(&floor[..shown]) > limit {
        shown -= 1;
    }
    let widths = &mut widths[..shown];
    while total(widths) > limit {
        let Some(i) = (0..widths.len())
            .filter(|&i| widths[i] > floor[i])
            .max_by_key(|&i| (widths[i], std::cmp::Reverse(i)))
        else {
            break;
        };
        // Down towards the next widest column in one step, one at a time among equals.
        let next = (0..widths.len())
            .filter(|&j| widths[j] < widths[i])
            .map(|j| widths[j])
            .max()
            .unwrap_or(0)
            .max(floor[i]);
        let excess = total(widths) - limit;
        widths[i] -= (widths[i] - next).clamp(1, excess);
    }
    shown
}

/// A cell on one line: line breaks and tabs (from a description, say) become spaces.
fn one_line(cell: &str) -> String {
    if cell.chars().any(char::is_control) {
        cell.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    } else {
        cell.to_string()
    }
}

/// `text` cut to `max` characters, an ellipsis marking the cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text.chars().count() > max => format!("{}…", &text[..at]),
        _ => text.to_string(),
    }
}

fn is_number(cell: &str) -> bool {
    // A duration such as `1.5s` counts; a version such as `0.1.0` does not.
    let digits = cell.strip_suffix('s').unwrap_or(cell);
    digits.starts_with(|c: char| c.is_ascii_digit()) && digits.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[&[&str]]) -> Table {
        let mut t = Table::new(rows[0]);
        for row in &rows[1..] {
            t.push(row.iter().map(|c| c.to_string()).collect());
        }
        t
    }

    #[test]
    fn sizes_columns_and_aligns_numbers() {
        let t = table(&[&["NAME", "NODES"], &["scaleway", "14"], &["x", "2500"]]);
        assert_eq!(
            t.render(None),
            "NAME      NODES\nscaleway     14\nx          2500\n"
        );
    }

    #[test]
    fn cuts_the_widest_column_to_fit_the_width() {
        let long = "a".repeat(200);
        let t = table(&[&["ID", "NAME", "DESCRIPTION"], &["u-1", "alice", &long]]);
        let text = t.render(Some(40));
        for line in text.lines() {
            assert!(line.chars().count() <= 40, "{line:?} is wider than 40");
        }
        assert!(text.contains("u-1  alice  aaaa"), "{text}");
        assert!(text.lines().nth(1).unwrap().ends_with('…'), "{text}");
        // Unlimited, the value is whole.
        assert!(t.render(None).contains(&long));
    }

    #[test]
    fn leaves_out_the_last_columns_when_cutting_is_not_enough() {
        let t = table(&[
            &[
                "IDENTIFIER",
                "FIRST_COLUMN",
                "SECOND_COLUMN",
                "THIRD_COLUMN",
            ],
            &["x", "y", "z", "w"],
        ]);
        let text = t.render(Some(30));
        assert!(text.starts_with("IDENTIFIER  FIRST_COLUMN\n"), "{text}");
        assert!(
            text.ends_with(
                "(2 more columns not shown: SECOND_COLUMN, THIRD_COLUMN; --wide or --format csv shows them)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn short_and_kept_columns_are_never_cut() {
        let t = table(&[
            &["STARTED", "STATUS", "PROBLEMS"],
            &["2026-12-05T07:19:55.130Z", "succeeded", &"x".repeat(100)],
        ])
        .keep_whole(&["STARTED"]);
        let text = t.render(Some(50));
        assert!(
            text.contains("2026-12-05T07:19:55.130Z  succeeded  xxxx"),
            "{text}"
        );
        assert_eq!(text.lines().nth(1).unwrap().chars().count(), 50, "{text}");
    }

    #[test]
    fn leaves_out_empty_columns_first_when_too_wide() {
        let t = table(&[
            &["ID", "NOTE", "NAME"],
            &["a", "", "alice"],
            &["b", " ", "bob"],
        ]);
        assert_eq!(
            t.render(None),
            "ID  NOTE  NAME\na         alice\nb         bob\n"
        );
        assert_eq!(t.render(Some(10)), "ID  NAME\na   alice\nb   bob\n");
    }

    #[test]
    fn keeps_cells_on_one_line() {
        let t = table(&[&["A", "B"], &["one\ntwo", "x\ty"]]);
        assert_eq!(t.render(None), "A        B\none two  x y\n");
    }

    #[test]
    fn csv_has_every_value_whole_and_quoted_where_needed() {
        let t = table(&[&["ID", "NOTE"], &["a,b", "say \"hi\"\nbye"]]);
        assert_eq!(
            t.csv().unwrap(),
            "ID,NOTE\n\"a,b\",\"say \"\"hi\"\"\nbye\"\n"
        );
    }

    #[test]
    fn cuts_at_a_character_with_an_ellipsis() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abcd", 4), "abcd");
        assert_eq!(cut("ééééé", 3), "éé…");
    }
}
