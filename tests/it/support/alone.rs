//! Tests that change the process environment (in-process credential chains read it) run alone in
//! a child copy of the test binary: every other test shares this process and its environment.

use std::process::Command;

/// Set in the child to the name of the one test it runs.
const CHILD: &str = "SPIN_AKS_TEST_ALONE";

/// In the test process: runs the calling test again in a child process of its own, panics unless
/// it passed there, and returns true (the caller returns). In that child: returns false, and the
/// test goes on, free to change the environment.
pub fn ran_in_child() -> bool {
    let test = test_name();
    if in_child() {
        return false;
    }
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, &test)
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{test} failed in its own process:\n{stdout}\n{stderr}"
    );
    // What the child said (a SKIPPED line among it) stays visible with --nocapture.
    eprint!("{stderr}");
    true
}

/// Panics unless the calling test runs in its own process ([`ran_in_child`]).
pub fn assert_in_child() {
    assert!(
        in_child(),
        "{} changes the process environment: call support::alone::ran_in_child() first",
        test_name()
    );
}

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some_and(|name| name == test_name().as_str())
}

/// The running test's name, as libtest names its thread (`area::test`).
fn test_name() -> String {
    std::thread::current()
        .name()
        .expect("called on a test's thread")
        .to_string()
}
