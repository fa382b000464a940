//! A `ScopeGuard` measures the thread that created it, so it must not travel to another
//! one: a future that holds it across an `.await` cannot be spawned on a multi-threaded
//! runtime. Compiled by the real cargo (see `common`), like `compile_fail.rs`.

mod common;

use common::Crate;

const HELD_ACROSS_AWAIT: &str = r#"
#[tokio::main]
async fn main() {
    tokio::spawn(async {
        let _scope = perf_rt::memory::ScopeGuard::enter("handler", None);
        tokio::task::yield_now().await;
    })
    .await
    .unwrap();
}
"#;

const DROPPED_BEFORE_AWAIT: &str = r#"
#[tokio::main]
async fn main() {
    tokio::spawn(async {
        {
            let _scope = perf_rt::memory::ScopeGuard::enter("sync part", None);
            std::hint::black_box(vec![0u8; 10]);
        }
        tokio::task::yield_now().await;
    })
    .await
    .unwrap();
}
"#;

#[test]
fn a_scope_guard_cannot_be_held_across_an_await_in_a_spawned_task() {
    let c = Crate::new(
        "perf-scope-guard-send",
        &[
            ("src/bin/held.rs", HELD_ACROSS_AWAIT),
            ("src/bin/dropped.rs", DROPPED_BEFORE_AWAIT),
        ],
    );
    let ok = c.build(&["--bin", "dropped"]);
    assert!(
        ok.status.success(),
        "a guard dropped before the await compiles:\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let held = c.build(&["--bin", "held"]);
    let err = String::from_utf8_lossy(&held.stderr);
    assert!(!held.status.success(), "held.rs must not compile");
    for wanted in [
        "cannot be sent between threads safely",
        "ScopeGuard",
        "src/bin/held.rs",
    ] {
        assert!(err.contains(wanted), "expected `{wanted}` in\n{err}");
    }
}
