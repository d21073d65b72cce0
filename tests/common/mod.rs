//! Helpers shared by the integration tests, included by every test file the one way:
//! `mod common;`. What a test of the commands needs is in `admin`; what a test of a
//! running cluster needs is in `cluster`; `front` reads through the read front; `probes`
//! are the checks of a coordinator under hostile clients; `tokens` signs upload tokens. Load, queue, metrics and the
//! scenario runner are the test kit's (`backpack_testkit`), shared with the benchmarks.
#![allow(dead_code)]

pub mod admin;
pub mod cluster;
pub mod ensemble;
pub mod front;
pub mod network;
pub mod probes;
pub mod tokens;
