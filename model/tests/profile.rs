//! The commands as the design card writes them (`cargo run -p model -- check`, `cargo test
//! conformance`) build in the dev profile. It must optimize: unoptimized, the checker ran about 8
//! times slower than `--release`; optimized, within 1.5 times (the table in `model/README.md` under "The
//! dev profile"). Debug assertions and overflow checks stay on, as the dev profile is for.

#[test]
fn the_dev_profile_optimizes_and_keeps_its_checks() {
    let manifest = include_str!("../../Cargo.toml");
    let dev = manifest
        .split("\n[profile.dev]\n")
        .nth(1)
        .expect("a [profile.dev] section")
        .split("\n[")
        .next()
        .unwrap();
    let settings: Vec<&str> = dev
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(settings.contains(&"opt-level = 3"), "{settings:?}");
    for off in ["debug-assertions = false", "overflow-checks = false"] {
        assert!(!settings.contains(&off), "{settings:?}");
    }
}
