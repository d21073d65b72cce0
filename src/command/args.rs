//! The arguments every command that works on a cluster takes alike, declared once.
//!
//! `argh` has no way to share fields between argument structs, so a command's struct is
//! declared through a macro that adds them around the command's own fields:
//!
//! - `cluster_command!`: `<zk_servers> <root>` first (the old tools' order, which users
//!   script against), the command's own fields, then `--zk-timeout`; and `open_cluster()`,
//!   which connects with them;
//! - `daemon_command!`: the same, with what both daemons set alike (the node connect
//!   timeout, the ZooKeeper session, Redis, host name lookups), and `sync_settings()` for
//!   the ZooKeeper thread.
//!
//! Each field is written as in any `argh` struct, the last one too ending with a comma.
//! (The fields pass through as tokens: `argh` tells a switch by seeing `bool` in its
//! type, which a macro's `ty` fragment would hide.)

/// An `argh` command struct on a cluster: `<zk_servers> <root>`, the fields given, and
/// `--zk-timeout`; with `open_cluster()`. (`@own_timeouts`: only the two positional
/// arguments and the fields given, for a command that names its timeouts itself.)
macro_rules! cluster_command {
    (
        @own_timeouts
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($fields:tt)*
        }
    ) => {
        #[derive(argh::FromArgs)]
        $(#[$meta])*
        pub struct $name {
            /// the ZooKeeper servers, host:port[,host:port...]
            #[argh(positional)]
            zk_servers: String,
            /// the cluster's root path in ZooKeeper, e.g. /backpack
            #[argh(positional)]
            root: String,
            $($fields)*
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($fields:tt)*
        }
    ) => {
        crate::command::args::cluster_command! {
            @own_timeouts
            $(#[$meta])*
            pub struct $name {
                $($fields)*
                /// time to wait for ZooKeeper when connecting, and for each call (default
                /// 5s)
                #[argh(
                    option,
                    default = "::std::time::Duration::from_secs(5)",
                    from_str_fn(crate::duration_arg::parse_duration)
                )]
                zk_timeout: ::std::time::Duration,
            }
        }

        impl $name {
            /// Connects to the cluster the arguments name.
            #[allow(dead_code)]
            fn open_cluster(&self) -> crate::Result<crate::zk_state::ZkState> {
                crate::zk_state::ZkState::open(&self.zk_servers, &self.root, self.zk_timeout)
            }
        }
    };
}

/// A daemon's `argh` struct: `cluster_command!` with `--node-connect-timeout` and the
/// settings of the ZooKeeper thread (`--zk-session-timeout`, `--redis-timeout`,
/// `--resolve-every`); with `sync_settings()`.
macro_rules! daemon_command {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($fields:tt)*
        }
    ) => {
        crate::command::args::cluster_command! {
            $(#[$meta])*
            pub struct $name {
                $($fields)*
                /// time to connect to a node (default 1s)
                #[argh(
                    option,
                    default = "::std::time::Duration::from_secs(1)",
                    from_str_fn(crate::duration_arg::parse_duration)
                )]
                node_connect_timeout: ::std::time::Duration,
                /// a node request ends when no byte moves either way for this long: a
                /// node gone silent mid-body; a slow transfer that moves is never cut
                /// (default 5s)
                #[argh(
                    option,
                    default = "::std::time::Duration::from_secs(5)",
                    from_str_fn(crate::duration_arg::parse_duration)
                )]
                node_progress_timeout: ::std::time::Duration,
                /// a node request ends when its answer has not started this long after
                /// the request was sent: a node whose host froze or went silent
                /// (default 5s)
                #[argh(
                    option,
                    default = "::std::time::Duration::from_secs(5)",
                    from_str_fn(crate::duration_arg::parse_duration)
                )]
                node_answer_timeout: ::std::time::Duration,
                /// how long ZooKeeper keeps our session (and with it a replicator's
                /// locks) while it hears nothing from us (default 10s)
                #[argh(
                    option,
                    default = "crate::zk::SESSION_TIMEOUT",
                    from_str_fn(crate::duration_arg::parse_duration)
                )]
                zk_session_timeout: ::std::time::Duration,
                /// time for one Redis command (default 1s)
                #[argh(
                    option,
                    default = "::std::time::Duration::from_secs(1)",
                    from_str_fn(crate::duration_arg::parse_duration)
                )]
                redis_timeout: ::std::time::Duration,
                /// how long a node's or Redis server's host name lookup stands before it
                /// is looked up again in the background, failed names included (default
                /// 30s)
                #[argh(
                    option,
                    default = "::std::time::Duration::from_secs(30)",
                    from_str_fn(crate::duration_arg::parse_duration)
                )]
                resolve_every: ::std::time::Duration,
            }
        }

        impl $name {
            /// The bounds of one node request, `total` for the whole of it.
            fn node_limits(
                &self,
                total: ::std::time::Duration,
            ) -> crate::transport::node_http::Limits {
                crate::transport::node_http::Limits {
                    connect: self.node_connect_timeout,
                    patience: crate::transport::node_transport::Patience {
                        progress: self.node_progress_timeout,
                        answer: self.node_answer_timeout,
                    },
                    total,
                }
            }

            /// The ZooKeeper thread's settings: `sizes` for a process that counts shard
            /// sizes; every daemon uses the replication queue.
            fn sync_settings(
                &self,
                sizes: Option<crate::cluster::sync::SizeAccounting>,
            ) -> crate::cluster::sync::SyncSettings {
                crate::cluster::sync::SyncSettings {
                    zk_servers: self.zk_servers.clone(),
                    root: self.root.clone(),
                    zk_timeout: self.zk_timeout,
                    session_timeout: self.zk_session_timeout,
                    sizes,
                    redis_timeout: self.redis_timeout,
                    resolve_every: self.resolve_every,
                    uses_queue: true,
                }
            }
        }
    };
}

pub(crate) use cluster_command;
pub(crate) use daemon_command;
