//! The standalone command: help, version, errors and a build, run as a user would.

use std::process::{Command, Output};

fn perf_build(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perf-build"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_and_version_on_every_command() {
    for args in [&["--help"][..], &["build", "--help"], &["help", "build"]] {
        let out = perf_build(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Usage: perf-build"), "{args:?}");
    }
    assert!(text(&perf_build(&["build", "--help"]).stdout).contains("--static-dir <DIR>"));
    for args in [&["--version"][..], &["build", "--version"]] {
        let out = perf_build(args);
        let version = text(&out.stdout);
        assert!(
            version.starts_with("perf-build")
                && version.trim().ends_with(env!("CARGO_PKG_VERSION")),
            "{args:?}: {version}"
        );
    }
    let out = perf_build(&[
        "build",
        "--static-dir",
        "x",
        "--dist-dir",
        "y",
        "--frobnicate",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unexpected argument '--frobnicate'"));
}

#[test]
fn builds_a_folder_and_reports_errors_like_rustc() {
    let root = tempfile::tempdir().unwrap();
    let static_dir = root.path().join("static");
    std::fs::create_dir_all(static_dir.join("css")).unwrap();
    std::fs::write(
        static_dir.join("css/app.css"),
        ".a {\n  color: #ff0000;\n}\n",
    )
    .unwrap();
    let dist = root.path().join("dist");
    let args = |d: &str| {
        vec![
            "build".to_string(),
            "--static-dir".into(),
            static_dir.display().to_string(),
            "--dist-dir".into(),
            d.to_string(),
            "--fast".into(),
        ]
    };
    let a = args(dist.to_str().unwrap());
    let out = perf_build(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("css/app."),
        "{}",
        text(&out.stdout)
    );
    assert!(dist.join("manifest.json").is_file());

    std::fs::write(static_dir.join("css/app.css"), ".a {\n  color: {\n}\n").unwrap();
    let out = perf_build(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: invalid CSS:")
            && stderr.contains("css/app.css:2:10")
            && stderr.contains("^ here"),
        "{stderr}"
    );
}
