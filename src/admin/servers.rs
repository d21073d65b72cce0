//! add-server: register a Backpack node, or move an existing one to a new address.

use crate::command::args::cluster_command;
use crate::command::Command;
use crate::error::Result;
use crate::state::check_new_id;
use crate::state::servers::{self, NodeUrl, Upsert};

cluster_command! {
    /// Register a Backpack node under an id, or change the address of an existing id.
    pub struct AddServer {
        /// the node's id, e.g. 1
        #[argh(positional)]
        id: String,
        /// the node's URL, http://host[:port] (port 80 when left out)
        #[argh(positional)]
        url: String,
    }
}

impl Command for AddServer {
    fn run(self) -> Result<()> {
        check_new_id("server", &self.id)?;
        let url = NodeUrl::parse(&self.url)?;
        let store = self.open_cluster()?;
        let path = store.paths().servers_map();
        let outcome = store.update(&path, |doc| servers::upsert(doc, &self.id, &url))?;
        let said = match outcome {
            Upsert::Added => "added",
            Upsert::Updated => "updated",
            Upsert::Unchanged => "unchanged",
        };
        let port = url.port.unwrap_or(80);
        println!("server {} {said}: {}:{port}", self.id, url.host);
        Ok(())
    }
}
