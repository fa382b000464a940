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

/// `--manifest-path` reads the package's `[package.metadata.perf]` as its build script
/// would (here the static folder, the URL prefix and a budget set to fail), and the
/// options given win over it.
#[test]
fn manifest_path_reads_the_package_settings_and_options_win() {
    let root = tempfile::tempdir().unwrap();
    let pkg = root.path().join("pkg");
    std::fs::create_dir_all(pkg.join("src")).unwrap();
    std::fs::create_dir_all(pkg.join("web/js")).unwrap();
    std::fs::write(pkg.join("src/lib.rs"), "").unwrap();
    let manifest = |over_budget: &str| {
        format!(
            "[package]\nname = \"cli-manifest\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [package.metadata.perf]\nstatic-dir = \"web\"\nurl-prefix = \"/assets\"\n\n\
             [package.metadata.perf.budgets.\"js/app.js\"]\njs = \"100 B\"\n\
             over-budget = \"{over_budget}\"\n"
        )
    };
    std::fs::write(pkg.join("Cargo.toml"), manifest("error")).unwrap();
    // Numbers a minifier cannot shorten: well over 100 bytes compressed.
    let script: String = (0..200)
        .map(|i| format!("console.log({});\n", i * 7919 % 100_003))
        .collect();
    std::fs::write(pkg.join("web/js/app.js"), script).unwrap();
    let dist = root.path().join("dist");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "build",
            "--manifest-path",
            "pkg/Cargo.toml",
            "--dist-dir",
            "dist",
            "--fast",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_perf-build"))
            .args(&args)
            .current_dir(root.path())
            .output()
            .unwrap()
    };

    // The budget is the package's, and fails the build; the error names its line.
    let out = run(&[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("over budget") && stderr.contains("pkg/Cargo.toml:11:"),
        "{stderr}"
    );
    assert!(!dist.join("manifest.json").exists());

    // Set to warn, the build goes through with the package's folder and prefix.
    std::fs::write(pkg.join("Cargo.toml"), manifest("warn")).unwrap();
    let out = run(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("over"), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(dist.join("manifest.json")).unwrap();
    assert!(written.contains("\"/assets/js/app."), "{written}");

    // An option wins over the manifest.
    let out = run(&["--url-prefix", "/cdn"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(dist.join("manifest.json")).unwrap();
    assert!(written.contains("\"/cdn/js/app."), "{written}");

    // Without a manifest the static folder is required.
    let bare = Command::new(env!("CARGO_BIN_EXE_perf-build"))
        .args(["build", "--dist-dir", "dist"])
        .current_dir(root.path())
        .output()
        .unwrap();
    assert!(!bare.status.success());
    assert!(
        text(&bare.stderr).contains("--static-dir <DIR>"),
        "{}",
        text(&bare.stderr)
    );
}
