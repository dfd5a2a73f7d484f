//! The spec states the real core reaches, compared with those the spec can reach (`implcheck reach`).

use conformance::implcheck::{self, Action as ImplAction, Bounds};
use conformance::reach::{self, Actions, Step};

/// Three servers, two terms, one entry, one crash; no losses or duplicates (a few seconds).
fn bounds() -> Bounds {
    Bounds {
        max_crashes: 1,
        max_drops: 0,
        max_dups: 0,
        ..implcheck::preset("small").expect("a preset").bounds
    }
}

#[test]
fn every_spec_state_the_core_reaches_is_one_the_spec_reaches() {
    let r = reach::measure(bounds(), Actions::Canonical, None);
    assert_eq!(r.violations, 0);
    assert!(r.outside.is_empty(), "{:?}", r.outside);
    assert_eq!(r.common, r.reached);
    assert!(r.reached > 100 && r.reachable > r.reached, "{r:?}");
    // Every spec state never reached is classed, and the classes add up.
    let unreached: usize = r.unreached.iter().map(|c| c.total).sum();
    assert_eq!(unreached, r.reachable - r.common);
    // The breakdown explains every step out of the core's reach: halfway through a step the core takes
    // whole, or a budget the core had spent, but for a leader's AppendEntries at a time of the spec's
    // choosing (its reason).
    for c in &r.unreached {
        assert!(c.frontier > 0 && c.total >= c.frontier, "{c:?}");
        if c.step != Step::AppendEntries {
            assert_eq!(c.frontier, c.halfway + c.spent, "{c:?}");
        }
        assert!(
            !matches!(c.step, Step::Start | Step::Timeout),
            "unexpected class {c:?}"
        );
    }
}

#[test]
fn the_whole_spec_reaches_more_than_its_enumeration() {
    let b = Bounds {
        max_crashes: 0,
        ..bounds()
    };
    let canonical = reach::measure(b, Actions::Canonical, None);
    let all = reach::measure(b, Actions::All, None);
    assert!(canonical.outside.is_empty() && all.outside.is_empty());
    assert_eq!(canonical.reached, all.reached);
    assert!(all.reachable > canonical.reachable, "{all:?} {canonical:?}");
}

#[test]
fn a_core_state_the_spec_cannot_reach_is_reported_with_the_step_that_left() {
    // The same core against a spec without crashes: its states after a crash are outside.
    let b = bounds();
    let mut spec = reach::spec_for(&b, 3, Actions::Canonical);
    spec.bounds.max_crashes = 0;
    let r = reach::measure(b, Actions::Canonical, Some(spec));
    assert!(!r.outside.is_empty());
    assert_eq!(r.common + r.outside.len(), r.reached);
    assert!(r
        .outside
        .iter()
        .filter_map(|o| o.from.as_ref())
        .all(|(_, a)| matches!(a, ImplAction::Crash(_))));
    assert!(r.outside.iter().any(|o| o.from.is_some()));
}
