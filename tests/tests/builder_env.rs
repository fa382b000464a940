//! `Builder::new()` reads the `PERF_BUILD_*` variables, as documented. In a test binary of
//! its own: the environment is shared by every test of a process.

use perf_build::Builder;

#[test]
fn builder_new_reads_the_environment_and_reports_bad_values() {
    // SAFETY: this binary has this one test, so no other thread reads the environment.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PERF_BUILD_URL_PREFIX", "/assets/");
        std::env::set_var("PERF_BUILD_MINIFY", "false");
    }
    let b = Builder::new();
    assert_eq!(b.config().url_prefix, "/assets");
    assert!(!b.config().minify);

    #[allow(unsafe_code)]
    // SAFETY: as above.
    unsafe {
        std::env::set_var("PERF_BUILD_MINIFY", "perhaps");
    }
    let dist = tempfile::tempdir().unwrap();
    let err = Builder::new()
        .cargo_instructions(false)
        .root(env!("CARGO_MANIFEST_DIR"))
        .static_dir("fixtures/static")
        .check_templates(false)
        .build_dist(dist.path(), &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("environment variable PERF_BUILD_MINIFY: `perhaps` is not a boolean"),
        "{err}"
    );
}
