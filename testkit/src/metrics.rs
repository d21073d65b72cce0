//! Reading what a daemon exports at `/metrics`: one sample looked up in the text as
//! served, or the whole text read by the reference parser (Python's `prometheus_client`,
//! from Debian), which also proves that the text parses.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// GET `url`, the body as text (any status but 2xx is an error).
pub fn get_text(url: &str) -> Result<String, String> {
    ureq::get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET {url}: {e}"))
}

/// The value of the sample written exactly `name` (labels included, as served) in a
/// Prometheus text.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// The sum of every sample of the metric family `family` (all label sets).
pub fn family_sum(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every sample of a Prometheus text as the reference parser reads it: the sample's name
/// and labels (`name{k=v}{k2=v2}`, labels sorted) -> value. An error, with the parser's
/// words, when it refuses the text.
pub fn parsed_samples(text: &str) -> Result<HashMap<String, f64>, String> {
    let script = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        key = s.name + "".join("{%s=%s}" % kv for kv in sorted(s.labels.items()))
        out[key] = s.value
print(json.dumps(out))
"#;
    let mut python = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run /usr/bin/python3: {e}"))?;
    if let Some(mut stdin) = python.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing to the parser: {e}"))?;
    }
    let output = python
        .wait_with_output()
        .map_err(|e| format!("the parser's answer: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the Prometheus parser refused the text: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("the parser's JSON: {e}"))
}

/// `<base>/metrics`, read by the reference parser.
pub fn scrape(base: &str) -> Result<HashMap<String, f64>, String> {
    let text = get_text(&format!("{base}/metrics"))?;
    parsed_samples(&text).map_err(|e| format!("{e}\n{text}"))
}
