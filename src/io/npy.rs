//! NumPy `.npy` files, so samples move to and from Python with a plain `np.load`.
//!
//! Writes format 1.0 (2.0 only if the header would not fit), little-endian `<f4` (or `|i1` for
//! discrete states), C order, exactly as numpy lays it out. Reads versions 1.0–3.0 with dtype
//! `<f4`, `<f8` (narrowed to f32) or the integers `|i1`, `|u1`, `<i4`, `<i8` (as f32; discrete
//! states and patterns), C order only.

use std::path::Path;

use crate::{Error, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy pads the header so the data starts on a 64-byte boundary (lets it mmap the array).
const ALIGN: usize = 64;

/// Python's `repr` of a shape tuple: `()`, `(3,)`, `(2, 3)`.
fn shape_repr(shape: &[usize]) -> String {
    match shape {
        [] => "()".into(),
        [n] => format!("({n},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// Encodes `data` (row-major, `shape.iter().product()` values) as a complete `.npy` file.
pub fn encode_f32(data: &[f32], shape: &[usize]) -> Vec<u8> {
    debug_assert_eq!(shape.iter().product::<usize>(), data.len(), "shape does not match data");
    let mut out = header("<f4", shape, 4 * data.len());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Encodes uint8 `data` (row-major) as a complete `.npy` file of dtype `|u1` (8-bit images).
pub fn encode_u8(data: &[u8], shape: &[usize]) -> Vec<u8> {
    debug_assert_eq!(shape.iter().product::<usize>(), data.len(), "shape does not match data");
    let mut out = header("|u1", shape, data.len());
    out.extend_from_slice(data);
    out
}

/// Encodes int8 `data` (row-major) as a complete `.npy` file of dtype `|i1`.
pub fn encode_i8(data: &[i8], shape: &[usize]) -> Vec<u8> {
    debug_assert_eq!(shape.iter().product::<usize>(), data.len(), "shape does not match data");
    let mut out = header("|i1", shape, data.len());
    out.extend(data.iter().map(|&v| v as u8));
    out
}

/// The magic, version, header length and header dict of a `.npy` file, with room for `data`
/// more bytes.
fn header(descr: &str, shape: &[usize], data: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}", shape_repr(shape));
    // Version 1.0 stores the header length in a u16; 2.0 widens it to u32.
    let (version, len_size) = if dict.len() + ALIGN < u16::MAX as usize { (1u8, 2) } else { (2, 4) };
    let prefix = MAGIC.len() + 2 + len_size;
    let total = (prefix + dict.len() + 1).div_ceil(ALIGN) * ALIGN;
    let header_len = total - prefix;

    let mut out = Vec::with_capacity(total + data);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if len_size == 2 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// Writes int8 `data` with the given shape to `path` (atomically).
pub fn write_i8(path: &Path, data: &[i8], shape: &[usize]) -> Result<()> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(Error::format(path, format!("{} values do not fit shape {shape:?}", data.len())));
    }
    super::write_atomic(path, &encode_i8(data, shape))
}

/// Writes `data` with the given shape to `path` (atomically).
pub fn write_f32(path: &Path, data: &[f32], shape: &[usize]) -> Result<()> {
    let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if count != Some(data.len()) {
        return Err(Error::invalid(
            "array shape",
            format!("{} values do not fit shape {shape:?} for {}", data.len(), path.display()),
        ));
    }
    super::write_atomic(path, &encode_f32(data, shape))
}

/// Reads an `.npy` file: the values (row-major) and the shape. No more than the header
/// declares is read, and a header declaring more than the memory budget is refused first.
pub fn read_f32(path: &Path) -> Result<(Vec<f32>, Vec<usize>)> {
    read(path).map(|a| (a.data, a.shape))
}

/// An array read from a `.npy` file: its values as f32 (row-major), shape and numpy dtype
/// (`'<f4'`, `'|u1'`, ...), for readers whose meaning depends on the dtype (images: `|u1` is
/// 0..255).
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
    pub dtype: String,
}

/// Reads an `.npy` file as [`read_f32`] does, keeping its dtype.
pub fn read(path: &Path) -> Result<Array> {
    // Values are decoded into f32s: at most 5 bytes in memory per byte read (an int8 file).
    let limit = crate::plan::Limit::budget_over(5, "the values are decoded into a copy")?;
    let mut declared = |b: &[u8]| Ok(parse_prefix(b, path)?.map(|h| (h.data_start + h.data_bytes) as u64));
    let bytes = crate::plan::read_file(path, ".npy file", &limit, &mut declared)?;
    decode(&bytes, path)
}

/// A parsed `.npy` header: where the data starts and how many bytes it must have.
struct Layout {
    header: Header,
    data_start: usize,
    data_bytes: usize,
}

/// The header of `bytes`, or `None` while they are too short to hold it.
fn parse_prefix(bytes: &[u8], path_for_errors: &Path) -> Result<Option<Layout>> {
    let err = |msg: String| Error::format(path_for_errors, msg);
    if !MAGIC.starts_with(&bytes[..bytes.len().min(MAGIC.len())]) {
        return Err(err("not a .npy file (bad magic string)".into()));
    }
    if bytes.len() < MAGIC.len() + 2 {
        return Ok(None);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let len_size = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => return Err(err(format!("unsupported .npy format version {major}.{minor}"))),
    };
    let prefix = 8 + len_size;
    let Some(len_field) = bytes.get(8..prefix) else { return Ok(None) };
    let header_len = len_field.iter().rev().fold(0usize, |acc, &b| acc << 8 | b as usize);
    let header_end = prefix.saturating_add(header_len);
    let Some(header) = bytes.get(prefix..header_end) else { return Ok(None) };
    // 1.0/2.0 headers are latin-1 but in practice ASCII; 3.0 allows UTF-8.
    let header = std::str::from_utf8(header).map_err(|_| err("header is not ASCII/UTF-8 text".into()))?;
    let header = parse_header(header).map_err(|m| err(format!("malformed header: {m}")))?;

    let item_size = match header.descr.as_str() {
        "<f4" | "<i4" => 4,
        "<f8" | "<i8" => 8,
        "|i1" | "|u1" => 1,
        other => {
            return Err(err(format!(
                "unsupported dtype '{other}' (readable: '<f4', '<f8', '|i1', '|u1', '<i4', '<i8')"
            )));
        }
    };
    if header.fortran_order {
        return Err(err("Fortran-order arrays are not supported (save with C order)".into()));
    }
    let data_bytes = header
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_mul(item_size))
        .ok_or_else(|| err(format!("shape {:?} is too large", header.shape)))?;
    Ok(Some(Layout { header, data_start: header_end, data_bytes }))
}

/// Decodes the bytes of an `.npy` file; `path_for_errors` only names the file in errors.
#[cfg(any(test, feature = "internals"))]
pub fn decode_f32(bytes: &[u8], path_for_errors: &Path) -> Result<(Vec<f32>, Vec<usize>)> {
    decode(bytes, path_for_errors).map(|a| (a.data, a.shape))
}

fn decode(bytes: &[u8], path_for_errors: &Path) -> Result<Array> {
    let err = |msg: String| Error::format(path_for_errors, msg);
    if bytes.len() < MAGIC.len() + 2 {
        return Err(err("not a .npy file (bad magic string)".into()));
    }
    let Some(Layout { header: Header { descr, shape, .. }, data_start: header_end, data_bytes: needed }) =
        parse_prefix(bytes, path_for_errors)?
    else {
        return Err(err(format!("truncated header: file has {} bytes", bytes.len())));
    };
    let body = &bytes[header_end..];
    if body.len() != needed {
        let what = if body.len() < needed { "truncated data" } else { "data length does not match shape" };
        return Err(err(format!("{what}: shape {shape:?} of {descr} needs {needed} bytes, file has {}", body.len())));
    }
    let word = |c: &[u8]| u64::from_le_bytes(std::array::from_fn(|k| c.get(k).copied().unwrap_or(0)));
    let data = match descr.as_str() {
        "<f4" => body.chunks_exact(4).map(|c| f32::from_bits(word(c) as u32)).collect(),
        "<f8" => body.chunks_exact(8).map(|c| f64::from_bits(word(c)) as f32).collect(),
        "<i4" => body.chunks_exact(4).map(|c| word(c) as u32 as i32 as f32).collect(),
        "<i8" => body.chunks_exact(8).map(|c| word(c) as i64 as f32).collect(),
        "|i1" => body.iter().map(|&b| b as i8 as f32).collect(),
        _ => body.iter().map(|&b| b as f32).collect(),
    };
    Ok(Array { data, shape, dtype: descr })
}

struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// Parses the Python dict literal numpy writes, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let mut p = Parser { s: text.as_bytes(), pos: 0 };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    p.expect(b'{')?;
    while !p.eat(b'}') {
        let key = match p.value()? {
            Value::Str(k) => k,
            _ => return Err(format!("expected a string key at offset {}", p.pos)),
        };
        p.expect(b':')?;
        match (key.as_str(), p.value()?) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Tuple(t)) => shape = Some(t),
            ("descr" | "fortran_order" | "shape", _) => {
                return Err(format!("bad value for '{key}'"));
            }
            _ => {} // numpy never writes other keys; tolerate them
        }
        if !p.eat(b',') {
            p.expect(b'}')?;
            break;
        }
    }
    Ok(Header {
        descr: descr.ok_or("missing 'descr'")?,
        fortran_order: fortran.ok_or("missing 'fortran_order'")?,
        shape: shape.ok_or("missing 'shape'")?,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Consumes `c` (after whitespace) if it is next.
    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        let hit = self.s.get(self.pos) == Some(&c);
        self.pos += hit as usize;
        hit
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.eat(c) { Ok(()) } else { Err(format!("expected '{}' at offset {}", c as char, self.pos)) }
    }

    fn value(&mut self) -> std::result::Result<Value, String> {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        match rest.first() {
            Some(&q @ (b'\'' | b'"')) => {
                let len = rest[1..]
                    .iter()
                    .position(|&c| c == q)
                    .ok_or_else(|| format!("unterminated string at offset {}", self.pos))?;
                let s = String::from_utf8_lossy(&rest[1..1 + len]).into_owned();
                self.pos += len + 2;
                Ok(Value::Str(s))
            }
            Some(b'(') => {
                self.pos += 1;
                let mut dims = Vec::new();
                while !self.eat(b')') {
                    self.skip_ws();
                    let digits = self.s[self.pos..].iter().take_while(|c| c.is_ascii_digit()).count();
                    let dim = std::str::from_utf8(&self.s[self.pos..self.pos + digits])
                        .ok()
                        .and_then(|d| d.parse().ok())
                        .ok_or_else(|| format!("expected a dimension at offset {}", self.pos))?;
                    self.pos += digits;
                    dims.push(dim);
                    if !self.eat(b',') {
                        self.expect(b')')?;
                        break;
                    }
                }
                Ok(Value::Tuple(dims))
            }
            _ if rest.starts_with(b"True") => {
                self.pos += 4;
                Ok(Value::Bool(true))
            }
            _ if rest.starts_with(b"False") => {
                self.pos += 5;
                Ok(Value::Bool(false))
            }
            Some(b'[') => Err("structured dtypes are not supported".into()),
            _ => Err(format!("unexpected input at offset {}", self.pos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("test.npy")
    }

    fn header(dict: &str, version: u8) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version, 0]);
        if version == 1 {
            out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out
    }

    #[test]
    fn header_matches_numpy_byte_for_byte() {
        let bytes = encode_f32(&[0.0; 6], &[2, 3]);
        let dict = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let mut expected = b"\x93NUMPY\x01\x00v\x00".to_vec();
        expected.extend_from_slice(dict);
        expected.resize(127, b' ');
        expected.push(b'\n');
        assert_eq!(&bytes[..128], &expected[..]);
        assert_eq!(bytes.len(), 128 + 24);
    }

    #[test]
    fn round_trips_shapes() {
        let cases: &[&[usize]] = &[&[], &[0], &[5], &[0, 3], &[2, 3], &[2, 3, 4], &[1, 1, 1, 7]];
        for &shape in cases {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.37 - 1.5).collect();
            let bytes = encode_f32(&data, shape);
            assert_eq!((bytes.len() - 4 * n) % ALIGN, 0);
            assert_eq!(decode_f32(&bytes, p()).unwrap(), (data, shape.to_vec()), "{shape:?}");
        }
        let (data, shape) = decode_f32(&encode_f32(&[f32::NAN, f32::INFINITY], &[2]), p()).unwrap();
        assert!(data[0].is_nan() && data[1] == f32::INFINITY && shape == [2]);
    }

    #[test]
    fn reads_f8_and_newer_versions() {
        for version in [1, 2, 3] {
            let mut b = header("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n", version);
            for v in [0.5f64, -2.0, 1e10] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            assert_eq!(decode_f32(&b, p()).unwrap(), (vec![0.5, -2.0, 1e10], vec![3]));
        }
        // Double quotes and no trailing comma are valid Python too.
        let mut b = header(r#"{"descr": "<f4", "fortran_order": False, "shape": (1, 1)}"#, 1);
        b.extend_from_slice(&7.0f32.to_le_bytes());
        assert_eq!(decode_f32(&b, p()).unwrap(), (vec![7.0], vec![1, 1]));
    }

    #[test]
    fn file_round_trip() {
        let dir = crate::io::tests::scratch_dir("npy");
        let path = dir.join("a.npy");
        write_f32(&path, &[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
        assert_eq!(read_f32(&path).unwrap(), (vec![1.0, 2.0, 3.0, 4.0], vec![2, 2]));
        assert!(write_f32(&path, &[1.0, 2.0, 3.0], &[2, 2]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn format_err(bytes: &[u8]) -> String {
        match decode_f32(bytes, p()) {
            Err(e @ Error::Format { .. }) => {
                let msg = e.to_string();
                assert!(msg.starts_with("test.npy: "), "{msg}");
                msg
            }
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn integer_arrays_read_as_floats() {
        let bytes = encode_i8(&[-1, 1, 0, 127], &[2, 2]);
        assert_eq!(decode_f32(&bytes, p()).unwrap(), (vec![-1.0, 1.0, 0.0, 127.0], vec![2, 2]));
        let mut wide = header("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 1);
        wide.extend_from_slice(&(-3i64).to_le_bytes());
        wide.extend_from_slice(&5i64.to_le_bytes());
        assert_eq!(decode_f32(&wide, p()).unwrap(), (vec![-3.0, 5.0], vec![2]));
    }

    #[test]
    fn malformed_files_are_errors() {
        let good = encode_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let with = |dict: &str, body: usize| {
            let mut b = header(dict, 1);
            b.resize(b.len() + body, 0);
            b
        };
        assert!(format_err(b"").contains("magic"));
        assert!(format_err(b"PK\x03\x04 zip file").contains("magic"));
        assert!(format_err(b"\x93NUMPY\x04\x00\x10\x00").contains("version 4.0"));
        assert!(format_err(b"\x93NUMPY\x01\x00\x10").contains("truncated header"));
        assert!(format_err(&good[..100]).contains("truncated header"));
        assert!(format_err(&good[..good.len() - 1]).contains("truncated data"));
        let mut long = good.clone();
        long.push(0);
        assert!(format_err(&long).contains("does not match"));
        let e = format_err(&with("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", 4));
        assert!(e.contains("'<i2'"), "{e}");
        assert!(format_err(&with("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8)).contains("'>f4'"));
        assert!(
            format_err(&with("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16)).contains("Fortran")
        );
        assert!(
            format_err(&with("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4))
                .contains("structured")
        );
        for dict in [
            "{'descr': '<f4', 'shape': (2,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,",
            "{'descr': '<f4 , 'fortran_order': False",
            "{'descr': 4, 'fortran_order': False, 'shape': (2,), }",
            "['descr']",
            "",
        ] {
            assert!(format_err(&with(dict, 8)).contains("malformed header"), "{dict}");
        }
        let huge = with("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", 0);
        assert!(format_err(&huge).contains("too large"));
        assert!(
            format_err(&[0x93, b'N', b'U', b'M', b'P', b'Y', 1, 0, 4, 0, 0xff, 0xfe, b'{', b'}']).contains("ASCII")
        );
    }
}
