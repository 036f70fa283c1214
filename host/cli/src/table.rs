//! Plain-text tables sized to their content, for terminals and for `grep`.

/// Renders `rows` (the first one is the header) with columns as wide as their widest
/// cell, two spaces apart; cells that are numbers are right-aligned.
pub fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| {
                if is_number(cell) {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn is_number(cell: &str) -> bool {
    // A duration such as `1.5s` counts; a version such as `0.1.0` does not.
    let digits = cell.strip_suffix('s').unwrap_or(cell);
    digits.starts_with(|c: char| c.is_ascii_digit()) && digits.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_columns_and_aligns_numbers() {
        let rows = vec![
            vec!["NAME".to_string(), "NODES".to_string()],
            vec!["scaleway".to_string(), "14".to_string()],
            vec!["x".to_string(), "2500".to_string()],
        ];
        assert_eq!(
            render(&rows),
            "NAME      NODES\nscaleway     14\nx          2500\n"
        );
    }
}
