//! Runs lab scenarios by name (all without names), printing each transcript: the quickest
//! way to try a scenario while writing it. `cargo run -p ipckit-lab --example lab -- pipe-eof`
fn main() {
    if ipckit_lab::is_child() {
        ipckit_lab::child_main();
    }
    let names: Vec<String> = std::env::args().skip(1).collect();
    let mut failed = 0;
    for s in ipckit_lab::scenarios() {
        if !names.is_empty() && !names.iter().any(|n| n == s.name) {
            continue;
        }
        println!("== {}: {}", s.name, s.lesson);
        let o = ipckit_lab::run(&s, |line| println!("{line}"));
        println!(
            "-> {} {} ({:.2} s)\n",
            if o.passed { "PASS" } else { "FAIL" },
            o.verdict,
            o.seconds
        );
        failed += usize::from(!o.passed);
    }
    std::process::exit(i32::from(failed > 0));
}
