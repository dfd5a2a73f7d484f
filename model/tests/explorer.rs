//! `explore` over HTTP, as a browser sees it: the address is checked before anything serves, the
//! page carries the key and the invalid-path check, the status words actions as the path list
//! does, a counterexample's state names the property it violates, and the sequence diagram is
//! sized from its labels and draws each message from the step that sent it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `model explore`, killed when dropped.
struct Explorer {
    child: Child,
    addr: String,
}

impl Drop for Explorer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn explore(args: &[&str]) -> Explorer {
    let mut child = Command::new(env!("CARGO_BIN_EXE_model"))
        .arg("explore")
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the model binary runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .expect("the first line names the address")
        .to_string();
    Explorer { child, addr }
}

/// One HTTP request; the status and the body.
fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "{method} {path} HTTP/1.0\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn get_json(addr: &str, path: &str) -> serde_json::Value {
    let (status, body) = http(addr, "GET", path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn run_explore(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_model"))
        .arg("explore")
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_or_busy_address_is_a_one_line_error_with_status_2() {
    let (code, err) = run_explore(&["--addr", "nonsense"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--addr 'nonsense'"), "{err}");
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, err) = run_explore(&["--addr", &addr]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--addr") && err.contains(&addr), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_page_carries_the_key_and_says_when_a_path_is_invalid() {
    let e = explore(&["--preset", "small"]);
    let (status, page) = http(&e.addr, "GET", "/");
    assert_eq!(status, 200);
    assert!(
        page.contains("<script src=\"/raft.js\"></script></body>"),
        "{page}"
    );
    let (status, script) = http(&e.addr, "GET", "/raft.js");
    assert_eq!(status, 200);
    assert!(script.contains(model::display::LEGEND), "{script}");
    assert!(script.contains("'/.path'"), "{script}");
    // The state table carries the key too.
    let init = get_json(&e.addr, "/.states");
    assert!(init[0]["state"]
        .as_str()
        .unwrap()
        .contains(model::display::LEGEND));

    let bad = get_json(&e.addr, "/.path/0/99/5");
    assert_eq!(bad["valid"], false);
    let message = bad["message"].as_str().unwrap();
    assert!(message.contains("action 99"), "{message}");
    assert!(message.contains("the initial state offers"), "{message}");
    assert_eq!(get_json(&e.addr, "/.path/0/0/0")["valid"], true);
    assert_eq!(get_json(&e.addr, "/.path/x")["valid"], false);
}

#[test]
fn properties_the_bounds_cannot_reach_are_not_listed() {
    let names = |e: &Explorer| -> Vec<String> {
        get_json(&e.addr, "/.status")["properties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[1].as_str().unwrap().to_string())
            .collect()
    };
    let off = names(&explore(&["--preset", "small"]));
    assert!(off.iter().any(|n| n == "a leader is elected"), "{off:?}");
    for hidden in [
        "a follower installs a snapshot",
        "a server restarts from a snapshot",
        "snapshot_index <= commit_index (sanity)",
        "an older-term entry commits through a newer one",
    ] {
        assert!(!off.iter().any(|n| n == hidden), "{hidden} in {off:?}");
    }
    let on = names(&explore(&["--preset", "snapshots"]));
    assert!(
        on.iter().any(|n| n == "a follower installs a snapshot"),
        "{on:?}"
    );
}

#[test]
fn the_recent_path_is_worded_as_the_path_list() {
    // Big enough that the search still runs when the Explorer next records a path (every 4 s).
    let e = explore(&["--preset", "default"]);
    let (status, _) = http(&e.addr, "POST", "/.runtocompletion");
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let path = loop {
        let status = get_json(&e.addr, "/.status");
        match status["recent_path"].as_str() {
            Some(p) if p != "[]" => break p.to_string(),
            _ => {}
        }
        assert!(Instant::now() < deadline, "no recent path: {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Every action as a sentence of the path list (which server's timeout comes first depends on
    // the search), none as its Rust `Debug`.
    let items = path
        .strip_prefix('[')
        .and_then(|p| p.strip_suffix(']'))
        .unwrap();
    assert!(
        items.contains(" times out and starts an election"),
        "{path}"
    );
    for item in items.split(", ") {
        let sentence = [
            "S",
            "client sends value ",
            "network drops ",
            "network duplicates ",
        ]
        .iter()
        .any(|start| item.starts_with(start));
        assert!(sentence, "{item} in {path}");
    }
    assert!(
        !path.contains("Timeout(") && !path.contains("Message {"),
        "{path}"
    );
}

#[test]
fn a_counterexample_state_names_the_property_it_violates() {
    let out = Command::new(env!("CARGO_BIN_EXE_model"))
        .args(["check", "--bug", "forget-vote", "--bfs", "--threads", "1"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    let link = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("then http://127.0.0.1:3000/#/steps"))
        .expect("an Explorer link");
    let flags_line = out
        .lines()
        .find_map(|l| l.split("cargo run --release -p model -- explore ").nth(1))
        .expect("the explore command");
    let flags: Vec<&str> = flags_line.split_whitespace().collect();
    let e = explore(&flags);
    let step = last_step(&e.addr, link);
    let outcome = step["outcome"].as_str().unwrap();
    assert!(outcome.contains("VIOLATES Election Safety"), "{outcome}");
    // The state before it violates nothing.
    let before = last_step(&e.addr, link.rsplit_once('/').unwrap().0);
    assert!(!before["outcome"].as_str().unwrap().contains("VIOLATES"));

    // Its sequence diagram is wide enough for every label, and each delivery's arrow starts at
    // the row of the step that sent the message, above the row of the delivery.
    let svg = step["svg"].as_str().unwrap();
    let width: usize = attr(svg, "width").parse().unwrap();
    let longest = svg
        .split("class='svg-event-label'>")
        .skip(1)
        .map(|t| t.split('<').next().unwrap().chars().count())
        .max()
        .unwrap();
    let label_x: usize = svg
        .split("<text x='")
        .filter(|t| t.contains("class='svg-event-label'>S"))
        .map(|t| t.split('\'').next().unwrap().parse::<usize>().unwrap())
        .max()
        .unwrap();
    assert!(
        width >= label_x + longest * 8,
        "{width} for {longest} chars at {label_x}"
    );
    let arrows: Vec<(i64, i64)> = svg
        .split("<line ")
        .filter(|l| l.contains("marker-end"))
        .map(|l| {
            (
                attr(l, "y1").parse().unwrap(),
                attr(l, "y2").parse().unwrap(),
            )
        })
        .collect();
    assert!(!arrows.is_empty());
    assert!(arrows.iter().all(|(y1, y2)| y1 < y2), "{arrows:?}");
    // Some message in this counterexample waits while other steps happen.
    assert!(arrows.iter().any(|(y1, y2)| y2 - y1 > 30), "{arrows:?}");
}

/// The step a path (`/0/3/1`) ends with, as `/.states` of the path before it lists it.
fn last_step(addr: &str, path: &str) -> serde_json::Value {
    let (parent, last) = path.rsplit_once('/').unwrap();
    let steps = get_json(addr, &format!("/.states{parent}"));
    steps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["actionIndex"] == last.parse::<u64>().unwrap())
        .unwrap_or_else(|| panic!("no step {last} after {parent}"))
        .clone()
}

/// The value of the first `name='...'` in `s`.
fn attr<'a>(s: &'a str, name: &str) -> &'a str {
    let start = s.find(&format!(" {name}='")).unwrap() + name.len() + 3;
    &s[start..start + s[start..].find('\'').unwrap()]
}

#[test]
fn a_drop_is_marked_on_the_senders_line() {
    let e = explore(&["--preset", "small"]);
    let find = |path: &str, action: &str| -> (String, serde_json::Value) {
        let steps = get_json(&e.addr, &format!("/.states{path}"));
        let step = steps
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["action"].as_str().unwrap_or("").starts_with(action))
            .unwrap_or_else(|| panic!("no '{action}' after {path}: {steps}"))
            .clone();
        (format!("{path}/{}", step["actionIndex"]), step)
    };
    let (path, _) = find("/0", "S2 times out");
    let (_, dropped) = find(&path, "network drops S2->S0");
    let svg = dropped["svg"].as_str().unwrap();
    // S0's line is at x=60, S2's (the sender's) at x=380.
    assert!(
        svg.contains("<text x='380' y='105' text-anchor='middle' class='svg-event-label'>x</text>"),
        "{svg}"
    );
}
