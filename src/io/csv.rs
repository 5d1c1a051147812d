//! Plain comma-separated sample matrices: one sample per line, no quoting.
//!
//! Values are written with Rust's shortest round-trip `Display`, so reading a file back gives
//! bit-identical f32s. A first line is a header (and skipped) only when it holds no number and
//! nothing that starts like one (a digit, sign or decimal point): a data row with a typo (`0x1`,
//! `1_0`) is refused naming its line and column, never swallowed as a header.

use std::fmt::Write as _;
use std::path::Path;

use crate::{Error, Result};

/// Formats `data` as rows of `cols` comma-separated values, each line ending in `\n`.
pub fn encode_f32(data: &[f32], cols: usize) -> String {
    let mut out = String::with_capacity(data.len() * 12);
    if cols == 0 {
        return out;
    }
    for row in data.chunks(cols) {
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{v}"); // writing to a String cannot fail
        }
        out.push('\n');
    }
    out
}

/// Writes `data` as a `cols`-column CSV file (atomically).
pub fn write_f32(path: &Path, data: &[f32], cols: usize) -> Result<()> {
    if cols == 0 || !data.len().is_multiple_of(cols) {
        return Err(Error::invalid(
            "csv columns",
            format!("{} values cannot be split into rows of {cols} for {}", data.len(), path.display()),
        ));
    }
    super::write_atomic(path, encode_f32(data, cols).as_bytes())
}

/// Reads a CSV matrix: the row-major values, rows and cols.
pub fn read_f32(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    // The text, then at most 2 bytes of f32 per byte of text ("0," is 2 bytes, its value 4).
    let limit = crate::plan::Limit::budget_over(3, "the text is decoded into f32 values");
    let bytes = crate::plan::read_file(path, "CSV file", &limit?, &mut crate::plan::undeclared)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::format(path, format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
    })?;
    decode_f32(&text, path)
}

/// Parses CSV text; `path_for_errors` only names the file in errors.
pub fn decode_f32(text: &str, path_for_errors: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let err = |msg: String| Error::format(path_for_errors, msg);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text); // spreadsheet BOM
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty()).peekable();
    let mut header_fields = None;
    if let Some((_, first)) = lines.peek()
        && first.split(',').all(|f| is_header_field(f.trim()))
    {
        header_fields = Some(first.split(',').count());
        lines.next();
    }

    let (mut data, mut cols, mut rows) = (Vec::new(), 0, 0);
    for (line_no, line) in lines {
        let start = data.len();
        for (col, field) in line.split(',').enumerate() {
            let field = field.trim();
            let v = field
                .parse::<f32>()
                .map_err(|_| err(format!("line {line_no}, column {}: '{field}' is not a number", col + 1)))?;
            data.push(v);
        }
        let n = data.len() - start;
        if rows == 0 {
            cols = n;
            if let Some(names) = header_fields.filter(|&h| h != n) {
                return Err(err(format!("line {line_no}: {n} fields, but the header on the first line names {names}")));
            }
        } else if n != cols {
            return Err(err(format!("line {line_no}: {n} fields, expected {cols} like the rows above")));
        }
        rows += 1;
    }
    if rows == 0 {
        let what = if header_fields.is_some() { "a header but no data rows" } else { "empty file: no data rows" };
        return Err(err(what.into()));
    }
    Ok((data, rows, cols))
}

/// Whether a first-line field can be a column name: not a number, and not starting like one
/// (so `0x1`, `1_0`, `-2e` or `.5.` are typos in data, not names).
fn is_header_field(field: &str) -> bool {
    field.parse::<f32>().is_err() && !field.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("s.csv")
    }

    fn err_msg(text: &str) -> String {
        match decode_f32(text, p()) {
            Err(e @ Error::Format { .. }) => e.to_string(),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn round_trips_exactly() {
        let data = [0.1f32, -1.0 / 3.0, 1e-45, f32::MAX, f32::MIN_POSITIVE, 123456.79, -0.0, 7.0, f32::EPSILON];
        let text = encode_f32(&data, 3);
        assert_eq!(text.lines().count(), 3);
        let (back, rows, cols) = decode_f32(&text, p()).unwrap();
        assert_eq!((rows, cols), (3, 3));
        assert!(back.iter().zip(&data).all(|(a, b)| a.to_bits() == b.to_bits()));

        let dir = crate::io::tests::scratch_dir("csv");
        let path = dir.join("x.csv");
        write_f32(&path, &data, 1).unwrap();
        assert_eq!(read_f32(&path).unwrap(), (data.to_vec(), 9, 1));
        assert!(write_f32(&path, &data, 2).is_err());
        assert!(write_f32(&path, &data, 0).is_err());
        std::fs::write(&path, b"1,2\n\xff\n").unwrap();
        assert!(matches!(read_f32(&path), Err(Error::Format { .. })));
        assert!(matches!(read_f32(&dir.join("missing.csv")), Err(Error::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn skips_header_blank_lines_and_crlf() {
        let text = "\u{feff}x, y\r\n1, 2\r\n\r\n3,4.5\r\n";
        assert_eq!(decode_f32(text, p()).unwrap(), (vec![1.0, 2.0, 3.0, 4.5], 2, 2));
        assert_eq!(decode_f32("1,2\n", p()).unwrap(), (vec![1.0, 2.0], 1, 2));
        let (v, _, _) = decode_f32("nan,inf,-inf\n", p()).unwrap();
        assert!(v[0].is_nan() && v[1] == f32::INFINITY && v[2] == f32::NEG_INFINITY);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = err_msg("a,b\n1,2\n3,oops\n");
        assert!(e.starts_with("s.csv: ") && e.contains("line 3, column 2") && e.contains("oops"), "{e}");
        let e = err_msg("1,2\n3,4\n\n5\n");
        assert!(e.contains("line 4") && e.contains("1 fields, expected 2"), "{e}");
        assert!(err_msg("1,2\n3,4,5\n").contains("line 2"));
        assert!(err_msg("1,2\n3,\n").contains("line 2, column 2"));
        assert!(err_msg("").contains("empty"));
        assert!(err_msg("\n  \n").contains("empty"));
        assert!(err_msg("x,y\n").contains("no data rows"));
        assert!(err_msg("x,y,z\n1,2\n").contains("header on the first line names 3"));
    }

    #[test]
    fn a_first_row_with_a_typo_is_refused_not_taken_for_a_header() {
        for (text, field) in
            [("0x1,2\n3,4\n", "0x1"), ("1_0\n2\n", "1_0"), ("1,-2e\n3,4\n", "-2e"), ("x,5\n1,2\n", "x")]
        {
            let e = err_msg(text);
            assert!(e.contains("line 1, column") && e.contains(&format!("'{field}'")), "{text:?}: {e}");
        }
        // Names (even ones holding digits later on) are still a header.
        assert_eq!(decode_f32("x1,y_2\n1,2\n", p()).unwrap(), (vec![1.0, 2.0], 1, 2));
    }
}
