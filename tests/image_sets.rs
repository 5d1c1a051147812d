//! Image sets beyond MNIST (`ebm_gpu::data::images`): the committed PNG folders of
//! tests/fixtures/images load with the pixel values written into them, .npy images with their
//! labels, train/test sets as splits; every malformed folder or file is refused naming it; a
//! network of another input shape is refused by the commands; Colour MNIST follows its rule;
//! RGB grids are drawn in colour.

mod common;

use ebm_gpu::data::{self, Split, images};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images").join(name)
}

fn gray_png(path: &Path, w: u32, h: u32, v: u8) {
    image::GrayImage::from_pixel(w, h, image::Luma([v])).save(path).unwrap();
}

fn err_of(r: ebm_gpu::Result<data::Dataset>) -> String {
    r.map(|d| format!("loaded {} rows", d.rows)).unwrap_err().to_string()
}

#[test]
fn grayscale_png_folder_loads_in_file_name_order_with_labels() {
    let set = data::load(&fixture("gray"), Split::Train).unwrap();
    assert_eq!((set.rows, set.shape()), (3, (1, 4, 4)));
    // a_white, b_black, c_ramp (written out of order; README.md and labels.txt skipped).
    let ramp: Vec<f32> = (0..16).map(|k| (16 * k) as f32 / 255.0).collect();
    let want: Vec<f32> = [vec![1.0; 16], vec![0.0; 16], ramp].concat();
    assert_eq!(set.images, want);
    assert_eq!(set.labels, Some(vec![7, 0, 3]));
    // One set: either split gives it, and it has no separate test split.
    assert_eq!(data::load(&fixture("gray"), Split::Test).unwrap(), set);
    assert!(!data::separate_splits(&fixture("gray")));
}

#[test]
fn rgb_png_folder_loads_channel_major() {
    let set = data::load(&fixture("rgb"), Split::Test).unwrap();
    assert_eq!((set.rows, set.shape()), (2, (3, 2, 3)));
    for i in 0..2 {
        let img = &set.images[i * 18..(i + 1) * 18];
        for (y, x) in [(0, 0), (1, 2), (0, 1)] {
            let p = y * 3 + x;
            let want = [10 * i + x, 100 + y, 200 + x + y].map(|k| k as f32 / 255.0);
            assert_eq!([img[p], img[6 + p], img[12 + p]], want, "image {i} pixel ({x}, {y})");
        }
    }
    assert_eq!(set.labels, Some(vec![5, 9]));
}

#[test]
fn npy_images_load_scaled_with_labels_beside() {
    let dir = common::temp_dir("npy-images");
    // [2, 2, 2] uint8 (C = 1): k / 255.
    let bytes: Vec<u8> = vec![0, 51, 102, 255, 255, 0, 17, 34];
    std::fs::write(dir.join("g.npy"), ebm_gpu::io::npy::encode_u8(&bytes, &[2, 2, 2])).unwrap();
    std::fs::write(dir.join("g.labels.txt"), "1\n2\n").unwrap();
    let set = data::load(&dir.join("g.npy"), Split::Test).unwrap();
    assert_eq!((set.rows, set.shape()), (2, (1, 2, 2)));
    assert_eq!(set.images, bytes.iter().map(|&k| k as f32 / 255.0).collect::<Vec<_>>());
    assert_eq!(set.labels, Some(vec![1, 2]));
    // The rows the commands use: 2 k / 255 - 1, as MNIST's.
    let rows = images::read_npy(&dir.join("g.npy")).unwrap();
    assert_eq!(rows.values[1], 2.0 * (51.0 / 255.0) - 1.0);
    assert_eq!(rows.values[3], 1.0);
    // [1, 3, 1, 2] float32: taken as given, with a labels .npy beside it.
    let f = [-1.0f32, 0.5, 0.25, -0.25, 1.0, 0.0];
    ebm_gpu::io::npy::write_f32(&dir.join("c.npy"), &f, &[1, 3, 1, 2]).unwrap();
    ebm_gpu::io::npy::write_f32(&dir.join("c.labels.npy"), &[4.0], &[1]).unwrap();
    let rows = images::read_npy(&dir.join("c.npy")).unwrap();
    assert_eq!((rows.values.as_slice(), rows.shape, rows.labels), (&f[..], [3, 1, 2], Some(vec![4])));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_and_test_sets_are_the_two_splits() {
    let dir = common::temp_dir("split-sets");
    std::fs::create_dir(dir.join("train")).unwrap();
    for (i, v) in [10u8, 20, 30].into_iter().enumerate() {
        gray_png(&dir.join(format!("train/{i}.png")), 2, 2, v);
    }
    std::fs::write(dir.join("test.npy"), ebm_gpu::io::npy::encode_u8(&[200; 4], &[1, 2, 2])).unwrap();
    assert!(data::separate_splits(&dir));
    let train = data::load(&dir, Split::Train).unwrap();
    let test = data::load(&dir, Split::Test).unwrap();
    assert_eq!((train.rows, train.images[4]), (3, 20.0 / 255.0));
    assert_eq!((test.rows, test.images[0]), (1, 200.0 / 255.0));
    // A train set without a test set is refused rather than read as a flat folder.
    std::fs::remove_file(dir.join("test.npy")).unwrap();
    let e = err_of(data::load(&dir, Split::Test));
    assert!(e.contains("no test set") && e.contains("train"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_png_folders_are_refused_naming_the_file() {
    let dir = common::temp_dir("bad-png");
    let case = |name: &str| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let sizes = case("sizes");
    gray_png(&sizes.join("a.png"), 4, 4, 0);
    gray_png(&sizes.join("b.png"), 4, 3, 0);
    let modes = case("modes");
    std::fs::copy(fixture("gray/a_white.png"), modes.join("a.png")).unwrap();
    std::fs::copy(fixture("rgb/img0.png"), modes.join("b.png")).unwrap();
    let empty = case("empty");
    std::fs::write(empty.join("notes.txt"), "no images here\n").unwrap();
    let corrupt = case("corrupt");
    gray_png(&corrupt.join("a.png"), 2, 2, 9);
    std::fs::write(corrupt.join("b.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let alpha = case("alpha");
    image::RgbaImage::from_pixel(2, 2, image::Rgba([1, 2, 3, 4])).save(alpha.join("a.png")).unwrap();
    let short = case("short-labels");
    gray_png(&short.join("a.png"), 2, 2, 0);
    gray_png(&short.join("b.png"), 2, 2, 0);
    std::fs::write(short.join("labels.txt"), "1\n").unwrap();
    let words = case("word-labels");
    gray_png(&words.join("a.png"), 2, 2, 0);
    gray_png(&words.join("b.png"), 2, 2, 0);
    std::fs::write(words.join("labels.txt"), "1\ntwo\n").unwrap();
    let fraction = case("fraction-labels");
    gray_png(&fraction.join("a.png"), 2, 2, 0);
    ebm_gpu::io::npy::write_f32(&fraction.join("labels.npy"), &[1.5], &[1]).unwrap();
    for (d, file, says) in [
        (&sizes, "b.png", "4x3 pixels"),
        (&modes, "b.png", "RGB PNG"),
        (&empty, "empty", "holds no .png files"),
        (&corrupt, "b.png", "not a readable PNG"),
        (&alpha, "a.png", "alpha"),
        (&short, "labels.txt", "1 labels, but"),
        (&words, "labels.txt", "line 2: \"two\" is not an integer"),
        (&fraction, "labels.npy", "not an integer"),
    ] {
        let e = err_of(data::load(d, Split::Train));
        assert!(e.contains(file) && e.contains(says), "{}: {e}", d.display());
    }
    // A folder of other files beside PNGs reads the PNGs only.
    gray_png(&empty.join("z.png"), 2, 2, 255);
    assert_eq!(data::load(&empty, Split::Train).unwrap().images, vec![1.0; 4]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_npy_images_are_refused_naming_the_file() {
    let dir = common::temp_dir("bad-npy");
    let write = |name: &str, bytes: Vec<u8>| {
        std::fs::write(dir.join(name), bytes).unwrap();
        dir.join(name)
    };
    let flat = write("flat.npy", ebm_gpu::io::npy::encode_u8(&[0; 8], &[8]));
    let deep = write("deep.npy", ebm_gpu::io::npy::encode_u8(&[0; 8], &[1, 1, 2, 2, 2]));
    let ints = write("ints.npy", ebm_gpu::io::npy::encode_i8(&[0; 8], &[2, 2, 2]));
    let long = write("long.npy", ebm_gpu::io::npy::encode_u8(&[0; 8], &[2, 2, 2]));
    std::fs::write(dir.join("long.labels.txt"), "1\n2\n3\n").unwrap();
    for (path, says) in [
        (&flat, "expected images of shape [N, C, H, W] or [N, H, W]"),
        (&deep, "found shape [1, 1, 2, 2, 2]"),
        (&ints, "dtype '|i1' is not an image dtype"),
        (&long, "3 labels, but"),
    ] {
        let e = err_of(data::load(path, Split::Train));
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(e.contains(&*name) && e.contains(says), "{name}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ebm restore` and `ebm train` refuse images whose C x H x W differs from the network's
/// input, naming both shapes, even when the counts agree (3x2x3 = 1x3x6 = 18 values).
#[test]
fn a_network_of_another_input_shape_is_refused() {
    use ebm_gpu::nn::{Architecture, Network};
    let dir = common::temp_dir("image-shape");
    let net = Network::random(&Architecture::parse("1x3x6/flatten/1").unwrap(), 3).unwrap();
    let weights = dir.join("net.safetensors");
    net.save(&weights).unwrap();
    let energy = format!("net:{}", weights.display());
    let rgb = fixture("rgb");
    let o = common::ebm(&["restore", "--energy", &energy, "--data", common::s(&rgb), "--backend", "cpu"]);
    let e = common::stderr(&o);
    assert!(!o.status.success() && e.contains("3x2x3") && e.contains("1x3x6"), "{e}");
    let run = dir.join("run");
    let o = common::ebm(&[
        "train",
        "--data",
        common::s(&rgb),
        "--model",
        "1x3x6/flatten/1/head:-f",
        "--run-dir",
        common::s(&run),
        "--backend",
        "cpu",
    ]);
    let e = common::stderr(&o);
    assert!(!o.status.success() && e.contains("3x2x3") && e.contains("1x3x6"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ebm data colour-mnist` on the MNIST fixture: [N, 3, 28, 28] uint8 with MNIST's labels; a
/// blank MNIST pixel is the background's palette colour, a full one the digit's, never equal.
#[test]
fn colour_mnist_follows_its_rule() {
    let dir = common::temp_dir("colour-mnist");
    let mnist = common::mnist_fixture();
    let o = common::ebm(&[
        "data",
        "colour-mnist",
        "--data",
        common::s(&mnist),
        "--out",
        common::s(&dir),
        "--limit",
        "12",
        "--seed",
        "5",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let grey = data::load(&mnist, Split::Test).unwrap().take(12);
    let colour = data::load(&dir, Split::Test).unwrap();
    assert_eq!((colour.rows, colour.shape()), (12, (3, 28, 28)));
    assert_eq!(colour.labels, grey.labels);
    let mut pairs = std::collections::HashSet::new();
    for i in 0..12 {
        let (fg, bg) = data::colour::colours(5, 1, i as u32);
        assert_ne!(fg, bg);
        pairs.insert((fg, bg));
        let g = &grey.images[i * 784..(i + 1) * 784];
        let c = &colour.images[i * 2352..(i + 1) * 2352];
        for (p, &t) in g.iter().enumerate() {
            let want = match t {
                0.0 => data::colour::PALETTE[bg],
                1.0 => data::colour::PALETTE[fg],
                _ => continue,
            };
            let got = [0, 1, 2].map(|ch| (c[ch * 784 + p] * 255.0).round() as u8);
            assert_eq!(got, want, "image {i} pixel {p} (grey {t})");
        }
    }
    assert!(pairs.len() > 3, "the colours vary between images: {pairs:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ebm data stroke-mnist` on the MNIST fixture: the images unchanged, the digit labels kept
/// beside them, and the stroke label 1 exactly where an image has more ink than the median
/// of its digit's images, so every digit splits about evenly.
#[test]
fn stroke_mnist_follows_its_rule() {
    let dir = common::temp_dir("stroke-mnist");
    let mnist = common::mnist_fixture();
    let o = common::ebm(&["data", "stroke-mnist", "--data", common::s(&mnist), "--out", common::s(&dir)]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let grey = data::load(&mnist, Split::Train).unwrap();
    let stroke = data::load(&dir, Split::Train).unwrap();
    assert_eq!(stroke.images, grey.images);
    let (digits, _) = ebm_gpu::io::npy::read_f32(&dir.join("train.digits.npy")).unwrap();
    let digits: Vec<u8> = digits.iter().map(|&d| d as u8).collect();
    assert_eq!(Some(&digits), grey.labels.as_ref());
    let strokes = stroke.labels.unwrap();
    let ink: Vec<f32> = grey.images.chunks_exact(784).map(|img| img.iter().sum()).collect();
    for digit in 0..10u8 {
        let own: Vec<usize> = (0..digits.len()).filter(|&i| digits[i] == digit).collect();
        let heavy: Vec<usize> = own.iter().copied().filter(|&i| strokes[i] == 1).collect();
        assert!(
            heavy.len() * 2 <= own.len() && heavy.len() * 2 + 2 >= own.len(),
            "digit {digit}: {} of {}",
            heavy.len(),
            own.len()
        );
        let lightest_heavy = heavy.iter().map(|&i| ink[i]).fold(f32::INFINITY, f32::min);
        let heaviest_light = own.iter().filter(|&&i| strokes[i] == 0).map(|&i| ink[i]).fold(0.0, f32::max);
        assert!(lightest_heavy > heaviest_light, "digit {digit}: {lightest_heavy} vs {heaviest_light}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ebm restore --png` draws RGB images in colour (the grid PNG is RGB, with pixels whose
/// channels differ).
#[test]
fn restore_grid_of_rgb_images_is_in_colour() {
    use ebm_gpu::nn::{Architecture, Network};
    let dir = common::temp_dir("rgb-grid");
    let net = Network::random(&Architecture::parse("3x2x3/flatten/1").unwrap(), 3).unwrap();
    let weights = dir.join("net.safetensors");
    net.save(&weights).unwrap();
    let energy = format!("net:{}", weights.display());
    let png = dir.join("grid.png");
    let rgb = fixture("rgb");
    let args = ["restore", "--energy", &energy, "--data", common::s(&rgb), "--steps", "1"];
    let o = common::ebm(&[&args[..], &["--backend", "cpu", "--png", common::s(&png)]].concat());
    assert!(o.status.success(), "{}", common::stderr(&o));
    let img = image::open(&png).unwrap();
    assert_eq!(img.color(), image::ColorType::Rgb8);
    let rgb = img.to_rgb8();
    assert!(rgb.pixels().any(|p| p[0] != p[1] || p[1] != p[2]), "no coloured pixel");
    // The original of image 0, pixel (0, 0): (0, 100, 200) as drawn (third column of the row).
    assert!(rgb.pixels().any(|p| p.0 == [0, 100, 200]), "the original's colour is not in the grid");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ebm rbm train` on RGB PNGs draws its filters in colour.
#[test]
fn rbm_filters_of_rgb_images_are_in_colour() {
    let dir = common::temp_dir("rgb-rbm");
    let run = dir.join("run");
    let rgb = fixture("rgb");
    let o = common::ebm(&[
        "rbm",
        "train",
        "--data",
        common::s(&rgb),
        "--hidden",
        "3",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--run-dir",
        common::s(&run),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let img = image::open(run.join("filters.png")).unwrap();
    assert_eq!(img.color(), image::ColorType::Rgb8);
    assert!(img.to_rgb8().pixels().any(|p| p[0] != p[1] || p[1] != p[2]), "no coloured pixel");
    std::fs::remove_dir_all(&dir).unwrap();
}
