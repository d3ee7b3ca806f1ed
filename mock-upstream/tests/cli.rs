//! The binary: prints `listening on http://ADDR` first, serves, exits 2 with file:line:field on bad config.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mock-upstream");

#[test]
fn prints_bound_address_first_and_serves() {
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "3",
            "--keys",
            "k1=sk-1,k2=sk-2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.write_all(b"GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-2\r\nconnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn bad_config_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mock.toml");
    std::fs::write(
        &path,
        "seed = 1\n\n[[keys]]\nid = \"k1\"\nsecret = \"s\"\nrmp = 5\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:6:1: field `keys[0].rmp`", path.display())),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());

    let output = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--keys", "no-equals-sign"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--keys"));
}

#[test]
fn sigterm_shuts_down_gracefully_with_exit_0() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn tls_prints_https_then_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca_out = dir.path().join("mock-ca.pem");
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--tls", "--ca-out"])
        .arg(&ca_out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut listening, mut ca_line) = (String::new(), String::new());
    stdout.read_line(&mut listening).unwrap();
    stdout.read_line(&mut ca_line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        listening.starts_with("listening on https://127.0.0.1:"),
        "{listening}"
    );
    assert_eq!(ca_line.trim(), format!("ca file: {}", ca_out.display()));
    let pem = std::fs::read_to_string(&ca_out).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
}

#[test]
fn tls_errors_exit_2_naming_the_flag_or_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mock.toml");
    std::fs::write(&config, "[tls]\nenabled = true\ncert_file = \"c.pem\"\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let files = dir.path().join("files.toml");
    std::fs::write(
        &files,
        format!(
            "[tls]\nenabled = true\ncert_file = \"{0}\"\nkey_file = \"{0}\"\n",
            missing.display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let files = files.display().to_string();
    let cases: [(&[&str], String); 4] = [
        (
            &["--ca-out", "/tmp/x.pem"],
            "--ca-out: tls.ca_out: is set but TLS is off".into(),
        ),
        (
            &["--config", &config],
            format!("{config}: field `tls.key_file`: is required with `tls.cert_file`"),
        ),
        (
            &["--config", &files],
            format!("field `tls.cert_file`: {}", missing.display()),
        ),
        (
            &["--tls", "--ca-out", "/nonexistent-dir/ca.pem"],
            "field `tls.ca_out`: cannot write the CA certificate to /nonexistent-dir/ca.pem".into(),
        ),
    ];
    for (flags, expected) in cases {
        let output = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(&expected), "{flags:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{flags:?}");
    }
}
