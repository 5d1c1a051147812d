//! IDX and digits loaders, binarisation, and bad files.

mod common;

use ebm_gpu::Error;
use ebm_gpu::data::{self, Binarize, Dataset, Split, idx};
use std::path::PathBuf;

/// A fresh scratch directory for one test.
fn scratch(tag: &str) -> PathBuf {
    common::temp_dir(&format!("data-{tag}"))
}

use common::gzip;

#[test]
fn shipped_digits_load() {
    let digits = common::digits_dir();
    let (tr, te) = (data::load(&digits, Split::Train).unwrap(), data::load(&digits, Split::Test).unwrap());
    assert_eq!((tr.rows, te.rows, tr.dim()), (1500, 297, 64));
}

#[test]
fn real_mnist_loads() {
    let test = data::load(&common::mnist_fixture(), Split::Test).unwrap();
    assert_eq!((test.rows, test.height, test.width), (200, 28, 28));
    let labels = test.labels.as_ref().unwrap();
    // The first 200 test labels of MNIST hold 28 ones.
    assert_eq!(labels.iter().filter(|&&l| l == 1).count(), 28);
    assert!(test.images.iter().all(|&x| (0.0..=1.0).contains(&x)));
}

#[test]
fn raw_and_gzipped_idx_round_trip() {
    let dir = scratch("roundtrip");
    let pixels: Vec<u8> = (0..2 * 3 * 4).map(|k| (k * 10) as u8).collect();
    let raw = idx::encode(&[2, 3, 4], &pixels);
    std::fs::write(dir.join("train-images-idx3-ubyte"), &raw).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gzip(&idx::encode(&[2], &[7, 9]))).unwrap();
    let d = data::load(&dir, Split::Train).unwrap();
    assert_eq!((d.rows, d.height, d.width), (2, 3, 4));
    assert_eq!(d.labels, Some(vec![7, 9]));
    assert_eq!(d.images[1], 10.0 / 255.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_idx_files_give_clear_errors() {
    let dir = scratch("bad");
    let p = dir.join("f");
    let check = |bytes: &[u8], want: &str| {
        std::fs::write(&p, bytes).unwrap();
        let e = idx::read(&p).unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(want) && msg.contains(p.to_str().unwrap()), "{msg}");
    };
    check(&[0x12, 0x34, 0x08, 0x03, 0, 0, 0, 1], "magic");
    check(&[0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0], "element type");
    check(&[0, 0, 8], "truncated IDX header");
    check(&[0, 0, 8, 3, 0, 0, 0, 2], "truncated IDX header");
    let mut full = idx::encode(&[2, 2, 2], &[1; 8]);
    full.truncate(full.len() - 3);
    check(&full, "truncated IDX data");
    let mut gz = gzip(&idx::encode(&[4], &[1; 4]));
    gz.truncate(gz.len() / 2);
    check(&gz, "gzip");
    // Image and label counts disagree.
    let images = dir.join("i");
    let labels = dir.join("l");
    std::fs::write(&images, idx::encode(&[3, 2, 2], &[0; 12])).unwrap();
    std::fs::write(&labels, idx::encode(&[2], &[0; 2])).unwrap();
    let e = idx::load_images(&images, Some(&labels)).unwrap_err().to_string();
    assert!(e.contains("3 images") && e.contains("2 labels"), "{e}");
    // Labels where images are expected.
    let e = idx::load_images(&labels, None).unwrap_err().to_string();
    assert!(e.contains("3-d"), "{e}");
    // A folder with neither layout, and a missing path.
    assert!(data::load(&dir, Split::Train).unwrap_err().to_string().contains("digits.csv"));
    assert!(matches!(data::load(&dir.join("nope"), Split::Train), Err(Error::Io { .. })));
    // A malformed digits CSV.
    let csv = dir.join("digits.csv");
    std::fs::write(&csv, "1,2,3\n").unwrap();
    assert!(data::digits::load(&csv).unwrap_err().to_string().contains("expected 65 values"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Stochastic binarisation: each pixel is on with probability equal to its grey level (checked
/// within 4 standard errors), reproducibly per seed; threshold binarisation is exact.
#[test]
fn binarisation() {
    let n = 40_000;
    let mut d = Dataset { images: vec![0.3; n], labels: None, rows: n / 8, channels: 1, height: 2, width: 4 };
    let orig = d.clone();
    data::binarize(&mut d, Binarize::Stochastic(3), 0);
    let mean = d.images.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let se = (0.3f64 * 0.7 / n as f64).sqrt();
    assert!((mean - 0.3).abs() < 4.0 * se, "mean {mean}");
    assert!(d.images.iter().all(|&x| x == 0.0 || x == 1.0));
    let mut again = orig.clone();
    data::binarize(&mut again, Binarize::Stochastic(3), 0);
    assert_eq!(again, d);
    let mut t = Dataset { images: vec![0.2, 0.5, 0.51, 1.0], labels: None, rows: 1, channels: 1, height: 2, width: 2 };
    data::binarize(&mut t, Binarize::Threshold(0.5), 0);
    assert_eq!(t.images, vec![0.0, 0.0, 1.0, 1.0]);
}
