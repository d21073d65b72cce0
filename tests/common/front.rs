//! The read front that bp-nginx-gen writes, for tests that read through it.

use super::cluster::client;
use backpack_testkit::{LocalCluster, NginxFront};

/// The front bp-nginx-gen writes for the cluster, started on a free port.
pub fn generated_front(cluster: &LocalCluster) -> NginxFront {
    cluster
        .start_front("front")
        .expect("start the generated front")
}

/// GET or HEAD through a front: status, Content-Length, body.
pub fn read(url: &str, head: bool) -> (u16, Option<String>, Vec<u8>) {
    let agent = client();
    let answer = if head {
        agent.head(url).call()
    } else {
        agent.get(url).call()
    }
    .unwrap_or_else(|err| panic!("{url}: {err}"));
    let status = answer.status().as_u16();
    let length = answer
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = answer
        .into_body()
        .with_config()
        .limit(8 << 20)
        .read_to_vec()
        .unwrap_or_default();
    (status, length, body)
}
