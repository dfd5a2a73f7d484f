//! The regression traces under `specs/traces/`, each with its expected verdict (`expected.tsv`): good traces
//! pass; broken ones fail at a known event with a known reason. Also: bad trace files get a clear error.

use std::path::Path;

use conformance::trace::{check, ReadError, Trace};

fn traces_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/traces"))
}

fn read(name: &str) -> Trace {
    let file = std::fs::File::open(traces_dir().join(name)).unwrap();
    Trace::read(std::io::BufReader::new(file)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn conformance_regression_traces_keep_their_verdicts() {
    let expected = std::fs::read_to_string(traces_dir().join("expected.tsv")).unwrap();
    let mut seen = 0;
    for line in expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let fields: Vec<&str> = line.split('\t').collect();
        let trace = read(fields[0]);
        match (fields[1], check(&trace)) {
            ("OK", Ok(_)) => {}
            ("MISMATCH", Err(m)) => {
                let event: usize = fields[2].parse().unwrap();
                assert_eq!(m.event, event, "{}: {m}", fields[0]);
                assert!(m.reason.contains(fields[3]), "{}: {m}", fields[0]);
            }
            (verdict, got) => panic!("{}: expected {verdict}, got {got:?}", fields[0]),
        }
        seen += 1;
    }
    assert!(seen >= 5);
}

#[test]
fn conformance_bad_trace_files_get_clear_errors() {
    let good =
        std::fs::read_to_string(traces_dir().join("initial-election-2a-seed1.jsonl")).unwrap();
    let parse = |text: &str| Trace::read(std::io::BufReader::new(text.as_bytes()));
    // Truncated in the middle of a line.
    let cut = &good[..good.len() / 2];
    match parse(cut) {
        Err(ReadError::Record { line, .. }) => assert_eq!(line, cut.lines().count()),
        other => panic!("{other:?}"),
    }
    // Another version of the format.
    let other_version = good.replacen("\"version\":1", "\"version\":2", 1);
    let err = parse(&other_version).unwrap_err();
    assert!(matches!(
        err,
        ReadError::Version {
            found: 2,
            expected: 1
        }
    ));
    assert!(err.to_string().contains("checker reads version 1"), "{err}");
    // Not a trace at all, and an empty file.
    assert!(matches!(parse("hello\n"), Err(ReadError::Header(_))));
    assert!(matches!(parse(""), Err(ReadError::Empty)));
    // A hand-edited field of the wrong type names its line.
    let mut lines: Vec<String> = good.lines().map(String::from).collect();
    lines[5] = lines[5].replacen("\"t\":", "\"t\":\"soon\",\"x\":", 1);
    match parse(&lines.join("\n")) {
        Err(ReadError::Record { line, .. }) => assert_eq!(line, 6),
        other => panic!("{other:?}"),
    }
    // Reordered lines parse, and the checker names the first event that no longer fits.
    let mut lines: Vec<&str> = good.lines().collect();
    lines.swap(3, 40);
    let m = check(&parse(&lines.join("\n")).unwrap()).unwrap_err();
    assert!(m.event <= 38, "{m}");
}

#[test]
fn conformance_hand_edited_numbers_never_panic_the_checker() {
    // Every line of a good trace, with one of its numbers set to 0, 1, a large value or the largest: the
    // checker returns a verdict (usually a mismatch), never a panic.
    let good = std::fs::read_to_string(traces_dir().join("persist1-2c-seed1.jsonl")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let mut mismatches = 0;
    for (k, line) in lines.iter().enumerate().skip(1).step_by(3) {
        let digits: Vec<(usize, usize)> = number_spans(line);
        for (start, end) in digits.iter().step_by(2) {
            for value in ["0", "1", "4294967296", "18446744073709551615"] {
                let edited = format!("{}{value}{}", &line[..*start], &line[*end..]);
                let mut text: Vec<&str> = lines.clone();
                text[k] = &edited;
                if let Ok(trace) = Trace::read(std::io::BufReader::new(text.join("\n").as_bytes()))
                {
                    if check(&trace).is_err() {
                        mismatches += 1;
                    }
                }
            }
        }
    }
    assert!(mismatches > 100, "{mismatches}");
}

/// The byte ranges of the unsigned integers in a JSON line that are not inside a string.
fn number_spans(line: &str) -> Vec<(usize, usize)> {
    let bytes = line.as_bytes();
    let (mut spans, mut in_string, mut i) = (Vec::new(), false, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => in_string = !in_string,
            b'0'..=b'9' if !in_string => {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                spans.push((start, i));
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    spans
}

#[test]
fn conformance_pictures_draw_every_message_and_cut_no_label() {
    use conformance::trace::format::Event;
    use conformance::trace::picture;
    let trace = read("persist1-2c-seed1.jsonl");
    let svg = picture::svg(&trace, 0..trace.records.len(), Some(3));
    let receives = trace
        .records
        .iter()
        .filter(|r| matches!(r.ev, Event::Receive { .. }))
        .count();
    let drops = trace
        .records
        .iter()
        .filter(|r| matches!(r.ev, Event::Drop { .. }))
        .count();
    assert_eq!(svg.matches("marker-end=\"url(#arrow)\"").count(), receives);
    assert_eq!(
        svg.matches("stroke=\"#c00\" stroke-width=\"2\"").count(),
        drops
    );
    assert_eq!(svg.matches("fill=\"#fdd\"").count(), 1, "the marked event");
    // Every label ends left of the next server's line (or of the picture's edge), at 7 px a character.
    let width: usize = attr(&svg, "<svg", "width").unwrap();
    let lines: Vec<usize> = svg
        .split("<line x1=\"")
        .skip(1)
        .filter(|s| s.contains("stroke=\"#bbb\""))
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect();
    for text in svg.split("<text ").skip(1) {
        let x: usize = attr(text, "", "x").unwrap();
        let content = &text[text.find('>').unwrap() + 1..text.find("</text>").unwrap()];
        let chars = content
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
            .chars()
            .count();
        let limit = lines.iter().copied().find(|l| *l > x).unwrap_or(width);
        assert!(
            x + chars * 7 <= limit || content.contains("events"),
            "cut off: {content}"
        );
    }
    // ShiViz: two lines an event, and a server's own clock entry grows by one per event.
    let log = picture::shiviz(&trace, 0..trace.records.len());
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len() % 2, 0);
    let mut last = std::collections::HashMap::new();
    for pair in lines.chunks(2) {
        let (host, clock) = pair[1].split_once(' ').unwrap();
        let own: u64 = clock
            .split(&format!("\"{host}\":"))
            .nth(1)
            .unwrap()
            .split([',', '}'])
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(own, last.get(host).copied().unwrap_or(0) + 1, "{pair:?}");
        last.insert(host.to_string(), own);
    }
}

/// The number in attribute `name="..."` of the first element after `after`.
fn attr(text: &str, after: &str, name: &str) -> Option<usize> {
    let rest = &text[text.find(after)?..];
    let key = format!(" {name}=\"");
    let start = match rest.strip_prefix(&key[1..]) {
        Some(_) => key.len() - 1,
        None => rest.find(&key)? + key.len(),
    };
    rest[start..start + rest[start..].find('"')?].parse().ok()
}

#[test]
fn conformance_shuffled_and_cut_trace_files_never_panic_the_checker() {
    // Lines removed, repeated or moved at random: every file is read or refused with a line number, and every
    // trace that reads gets a verdict, never a panic.
    use rand::{Rng, SeedableRng};
    let good = std::fs::read_to_string(traces_dir().join("persist1-2c-seed1.jsonl")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut rejected = 0;
    for _ in 0..300 {
        let mut edited = lines.clone();
        for _ in 0..rng.random_range(1..4) {
            let k = rng.random_range(1..edited.len());
            match rng.random_range(0..3) {
                0 => {
                    edited.remove(k);
                }
                1 => {
                    let line = edited[k];
                    edited.insert(rng.random_range(1..edited.len()), line);
                }
                _ => {
                    let j = rng.random_range(1..edited.len());
                    edited.swap(k, j);
                }
            }
        }
        match Trace::read(std::io::BufReader::new(edited.join("\n").as_bytes())) {
            Ok(trace) => {
                if check(&trace).is_err() {
                    rejected += 1;
                }
            }
            Err(e) => panic!("whole lines moved still parse: {e}"),
        }
    }
    assert!(rejected > 250, "{rejected}");
}
