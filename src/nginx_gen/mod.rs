//! `bp-nginx-gen`: the nginx front's configuration from the cluster's state in ZooKeeper.
//! `config` renders it; `command` reads the state once or watches it (`--watch`).

pub mod command;
pub mod config;
