//! Tasks the adapter owns.

use tokio::task::JoinHandle;

/// A task aborted when its handle is dropped: the adapter's tasks must end with
/// whatever owns them (a dropped `JoinHandle` alone would let them run on).
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
