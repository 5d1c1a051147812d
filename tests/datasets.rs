//! `ebm data download` against a local HTTP server on 127.0.0.1 (no network): a good download
//! verifies and `--data mnist` then finds it in the per-user data dir; a corrupted file is
//! refused and nothing is left under its name; an interrupted download resumes with a Range
//! request; a missing dataset's error names each folder searched and the download command.

mod common;

use ebm_gpu::cli::datasets::{FileSpec, Outcome, fetch_files, part_path, sha256_file};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// The committed MNIST slice (tests/fixtures/mnist) as a dataset's file table: a changed
/// fixture fails here rather than passing unchecked.
const FIXTURE: [FileSpec<'static>; 4] = [
    FileSpec {
        name: "train-images-idx3-ubyte.gz",
        sha256: "82147ea4510b80c25bd326778de58a7a13aa3292825949ff4892373dbbb47f98",
        size: 161752,
    },
    FileSpec {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "b388356812b449694bd87f935ed7cb662a128f8c57fe44f1a5421d14f673851b",
        size: 541,
    },
    FileSpec {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "b71e6a338807f343ef44176da9c97a6353f113af89c1dafb0ac0d470c0105461",
        size: 31068,
    },
    FileSpec {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "2cc872e664be95d3a20f61b2fc2cff31c1380d969b564ed8ba9a67d5be0c32b8",
        size: 152,
    },
];

/// What the server was asked: (path, the Range header's value, if any).
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A tiny HTTP/1.1 file server on 127.0.0.1: GET of a known path (with `Range: bytes=N-` when
/// asked), 404 otherwise. `cut` drops the connection after that many body bytes of the first
/// request for a path, once.
struct Server {
    url: String,
    log: Log,
}

impl Server {
    fn start(files: HashMap<String, Vec<u8>>, cut: Option<(&str, usize)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log: Log = Arc::default();
        let cut = Arc::new(Mutex::new(cut.map(|(p, n)| (p.to_string(), n))));
        let (files, served) = (Arc::new(files), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (files, log, cut) = (files.clone(), served.clone(), cut.clone());
                std::thread::spawn(move || serve(stream, &files, &log, &cut));
            }
        });
        Server { url, log }
    }

    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(mut stream: TcpStream, files: &HashMap<String, Vec<u8>>, log: &Log, cut: &Mutex<Option<(String, usize)>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap() == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }
    log.lock().unwrap().push((path.clone(), range.clone()));
    let Some(body) = files.get(&path) else {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let from = range.as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse::<usize>().ok());
    let head = match from {
        Some(f) if f >= body.len() => {
            let _ = stream.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        Some(f) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {f}-{}/{}\r\nConnection: close\r\n\r\n",
            body.len() - f,
            body.len() - 1,
            body.len()
        ),
        None => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()),
    };
    let body = &body[from.unwrap_or(0)..];
    let drop_after = {
        let mut cut = cut.lock().unwrap();
        match cut.as_ref() {
            Some((p, n)) if *p == path => {
                let n = *n;
                *cut = None;
                Some(n)
            }
            _ => None,
        }
    };
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body[..drop_after.unwrap_or(body.len()).min(body.len())]);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// The fixture files served under `/mnist/NAME`.
fn fixture_files() -> HashMap<String, Vec<u8>> {
    FIXTURE
        .iter()
        .map(|f| (format!("/mnist/{}", f.name), std::fs::read(common::mnist_fixture().join(f.name)).unwrap()))
        .collect()
}

/// The `ebm` binary run in `cwd` with XDG_DATA_HOME = `xdg` and EBM_DATA_DIR unset (so the
/// folders searched are the per-user data dir and `cwd/../shared/data`).
fn ebm(cwd: &Path, xdg: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebm"))
        .args(args)
        .current_dir(cwd)
        .env("XDG_DATA_HOME", xdg)
        .env_remove("EBM_DATA_DIR")
        .env_remove("EBM_DATA_MIRROR")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run ebm")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A fresh (cwd, XDG_DATA_HOME) pair whose cwd has no `../shared/data` (a folder two levels
/// under the scratch dir).
fn places(tag: &str) -> (PathBuf, PathBuf) {
    let root = common::temp_dir(&format!("datasets-{tag}"));
    let (cwd, xdg) = (root.join("a/work"), root.join("xdg"));
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&xdg).unwrap();
    (cwd, xdg)
}

/// Names of the files in `dir` (none if it is missing).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn download_verifies_and_data_mnist_finds_it_in_the_user_dir() {
    let server = Server::start(fixture_files(), None);
    let (cwd, xdg) = places("good");
    let dir = xdg.join("ebm-gpu/mnist");
    let outcomes = fetch_files(&FIXTURE, &[format!("{}/mnist", server.url)], &dir).unwrap();
    assert_eq!(outcomes.len(), 4);
    for ((name, outcome), spec) in outcomes.iter().zip(&FIXTURE) {
        assert_eq!(*outcome, Outcome::Downloaded { from: format!("{}/mnist/{name}", server.url), resumed_from: 0 });
        assert_eq!(sha256_file(&dir.join(name)).unwrap(), spec.sha256);
    }
    let mut expected: Vec<String> = FIXTURE.iter().map(|f| f.name.to_string()).collect();
    expected.sort();
    assert_eq!(listing(&dir), expected, "exactly the four files, no .part left");
    // A second run finds them in place and verified, and asks the server for nothing.
    let asked = server.requests().len();
    let again = fetch_files(&FIXTURE, &[format!("{}/mnist", server.url)], &dir).unwrap();
    assert!(again.iter().all(|(_, o)| *o == Outcome::Present), "{again:?}");
    assert_eq!(server.requests().len(), asked);

    // `--data mnist` resolves to the per-user data dir: `data list` says so, and a command runs on it.
    let o = ebm(&cwd, &xdg, &["data", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&format!("mnist: {}", dir.display())), "{}", text(&o));
    assert!(text(&o).contains("fashion-mnist: not downloaded (ebm data download fashion-mnist)"), "{}", text(&o));
    let net = cwd.join("classifier.safetensors");
    let o = ebm(&cwd, &xdg, &["init-net", "784/10", "--out", common::s(&net)]);
    assert!(o.status.success(), "{}", text(&o));
    let energy = format!("net:{}", net.display());
    let o = ebm(&cwd, &xdg, &["classify", "--energy", &energy, "--data", "mnist", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("200"), "classify should see the fixture's 200 test images: {}", text(&o));
}

#[test]
fn corrupted_download_is_refused_and_nothing_is_left() {
    let mut files = fixture_files();
    let bad = format!("/mnist/{}", FIXTURE[1].name);
    let body = files.get_mut(&bad).unwrap();
    let mid = body.len() / 2;
    body[mid] ^= 0x40;
    let server = Server::start(files, None);
    let (_, xdg) = places("corrupt");
    let dir = xdg.join("mnist");
    let err = fetch_files(&FIXTURE, &[format!("{}/mnist", server.url)], &dir).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("SHA-256 mismatch") && message.contains(FIXTURE[1].name), "{message}");
    // The file before it is complete and verified; the corrupted one is nowhere, not even as .part.
    assert_eq!(listing(&dir), vec![FIXTURE[0].name.to_string()]);

    // The real command with the real table: a file of the published size with other bytes.
    let (cwd, xdg) = places("corrupt-cli");
    let size = 9_912_422;
    let fake = HashMap::from([("/mnist/train-images-idx3-ubyte.gz".to_string(), vec![7u8; size])]);
    let server = Server::start(fake, None);
    let out = cwd.join("data");
    let o = ebm(&cwd, &xdg, &["data", "download", "mnist", "--dir", common::s(&out), "--mirror", &server.url]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("SHA-256 mismatch") && text(&o).contains("refused"), "{}", text(&o));
    assert_eq!(listing(&out.join("mnist")), Vec::<String>::new(), "nothing half-written remains");
    // https mirrors are refused with a reason, not attempted.
    let o =
        ebm(&cwd, &xdg, &["data", "download", "mnist", "--dir", common::s(&out), "--mirror", "https://example.org"]);
    assert!(!o.status.success() && text(&o).contains("https is not supported"), "{}", text(&o));
}

#[test]
fn interrupted_download_resumes_with_a_range_request() {
    let first = FIXTURE[0].name;
    let cut = 40_000;
    let server = Server::start(fixture_files(), Some((&format!("/mnist/{first}"), cut)));
    let (_, xdg) = places("resume");
    let dir = xdg.join("ebm-gpu/mnist");
    let mirrors = [format!("{}/mnist", server.url)];
    let err = fetch_files(&FIXTURE, &mirrors, &dir).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("run the command again to resume"), "{message}");
    let part = part_path(&dir.join(first));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), cut as u64, "the received bytes are kept");
    assert!(!dir.join(first).exists(), "nothing under the final name");
    // `data list` points at the partial download (here in the per-user data dir).
    let (cwd, _) = places("resume-list");
    let o = ebm(&cwd, &xdg, &["data", "list"]);
    let listed = format!("{}: an interrupted download, {cut} of ", part.display());
    assert!(text(&o).contains(&listed), "{}", text(&o));

    let outcomes = fetch_files(&FIXTURE, &mirrors, &dir).unwrap();
    assert_eq!(
        outcomes[0].1,
        Outcome::Downloaded { from: format!("{}/{first}", mirrors[0]), resumed_from: cut as u64 }
    );
    let requests = server.requests();
    let resumed = requests.iter().filter(|(p, _)| p.ends_with(first)).collect::<Vec<_>>();
    assert_eq!(resumed.len(), 2, "{requests:?}");
    assert_eq!(resumed[0].1, None);
    assert_eq!(resumed[1].1.as_deref(), Some(format!("bytes={cut}-").as_str()));
    assert_eq!(sha256_file(&dir.join(first)).unwrap(), FIXTURE[0].sha256);
    assert!(!part.exists());
}

#[test]
fn missing_dataset_error_names_the_folders_and_the_download_command() {
    let (cwd, xdg) = places("missing");
    let image_net = cwd.join("image.safetensors");
    let classifier = cwd.join("classifier.safetensors");
    for (spec, out) in [("1x28x28/flatten/1", &image_net), ("784/10", &classifier)] {
        let o = ebm(&cwd, &xdg, &["init-net", spec, "--out", common::s(out)]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let (image, class) = (format!("net:{}", image_net.display()), format!("net:{}", classifier.display()));
    let run = cwd.join("run");
    let commands: Vec<Vec<&str>> = vec![
        vec!["train", "--data", "mnist", "--model", "1x28x28/flatten/1", "--run-dir", common::s(&run), "--steps", "1"],
        vec!["rbm", "train", "--data", "mnist", "--run-dir", common::s(&run)],
        vec!["ood", "--energy", &image, "--in", "mnist", "--out", "noise"],
        vec!["restore", "--energy", &image, "--data", "mnist"],
        vec!["eval", "--energy", &image, "--data", "mnist"],
        vec!["classify", "--energy", &class, "--data", "mnist"],
    ];
    let user_dir = xdg.join("ebm-gpu/mnist");
    for args in &commands {
        let o = ebm(&cwd, &xdg, args);
        let t = text(&o);
        assert!(!o.status.success(), "{args:?}: {t}");
        for needle in [user_dir.to_str().unwrap(), "../shared/data/mnist", "ebm data download mnist"] {
            assert!(t.contains(needle), "{args:?}: the error should name {needle:?}:\n{t}");
        }
        assert!(!run.exists(), "{args:?} left a run dir behind");
    }
    // With EBM_DATA_DIR set, only it is searched, and the error says so.
    let chosen = cwd.join("chosen");
    let o = Command::new(env!("CARGO_BIN_EXE_ebm"))
        .args(&commands[5])
        .current_dir(&cwd)
        .env("XDG_DATA_HOME", &xdg)
        .env("EBM_DATA_DIR", &chosen)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success() && t.contains(chosen.join("mnist").to_str().unwrap()), "{t}");
    assert!(t.contains("only it is searched") && !t.contains(user_dir.to_str().unwrap()), "{t}");
}
