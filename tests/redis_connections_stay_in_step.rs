//! A pooled Redis connection answers each request with that request's own reply, also
//! after a pipeline one of whose commands the server refused.

use backpack::transport::redis::RedisPool;
use backpack_testkit::{RedisServer, Sandbox};
use std::time::Duration;

#[test]
fn a_refused_command_in_a_pipeline_leaves_no_answer_behind() {
    let sandbox = Sandbox::new("redis-in-step").unwrap();
    let redis = RedisServer::start(&sandbox, "redis").unwrap();
    let pool = RedisPool::new(redis.addr(), Duration::from_secs(2));
    let set = |key: &str, value: &str| {
        pool.with(|conn| redis::cmd("SET").arg(key).arg(value).query::<()>(conn))
            .unwrap_or_else(|err| panic!("SET {key}: {err}"));
    };
    set("word", "not a number");
    set("first", "one");
    set("second", "two");

    // INCR of a word is refused; the GET after it in the same pipeline is answered.
    let pipelined = pool.with(|conn| {
        redis::pipe()
            .cmd("INCR")
            .arg("word")
            .cmd("GET")
            .arg("first")
            .query::<(i64, String)>(conn)
    });
    let refused = pipelined.expect_err("INCR of a word is refused");
    assert!(
        refused.to_string().contains("not an integer"),
        "the pipeline's error is the server's: {refused}"
    );

    // The pool has one connection, the one the pipeline used: the next request on it must
    // read its own answer, not the pipeline's unread "one".
    let second: String = pool
        .with(|conn| redis::cmd("GET").arg("second").query(conn))
        .expect("GET second");
    assert_eq!(
        second, "two",
        "a reply meant for the pipeline was read instead"
    );
    let first: String = pool
        .with(|conn| redis::cmd("GET").arg("first").query(conn))
        .expect("GET first");
    assert_eq!(first, "one");
}
