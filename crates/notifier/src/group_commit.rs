//! Group commit for the webhook store's SQLite file: writes asked for while a commit is under way
//! wait and go together into the next transaction, one fsync for all of them. Under B3's load, 64
//! senders each saving their window in its own transaction queued behind one another's fsyncs,
//! and a delivery waited ~0.7 s for its sender's turn (docs/benchmarks.md, B9).

use std::sync::{Arc, Mutex, PoisonError};

use readmodel::ViewError;
use rusqlite::{Connection, Transaction};
use tokio::sync::oneshot;

type Reply<O> = oneshot::Sender<Result<O, ViewError>>;

struct Queue<J, O> {
    waiting: Vec<(J, Reply<O>)>,
    /// A blocking task is writing (and will take what is waiting before it stops).
    writing: bool,
}

/// Writes of jobs `J` (each giving an `O`) through one connection, grouped.
pub(crate) struct GroupCommit<J, O> {
    conn: Arc<Mutex<Connection>>,
    queue: Arc<Mutex<Queue<J, O>>>,
    write: fn(&Transaction<'_>, J) -> Result<O, ViewError>,
}

/// Lets the next writer start if this one stops early (a panic in a write).
struct Writing<J, O>(Arc<Mutex<Queue<J, O>>>);

impl<J, O> Drop for Writing<J, O> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .writing = false;
    }
}

impl<J: Send + 'static, O: Send + 'static> GroupCommit<J, O> {
    pub(crate) fn new(
        conn: Arc<Mutex<Connection>>,
        write: fn(&Transaction<'_>, J) -> Result<O, ViewError>,
    ) -> Self {
        Self {
            conn,
            queue: Arc::new(Mutex::new(Queue {
                waiting: Vec::new(),
                writing: false,
            })),
            write,
        }
    }

    /// Write `job` in the next transaction (with whatever else is waiting then); its output once
    /// committed.
    pub(crate) async fn write(&self, job: J) -> Result<O, ViewError> {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push((job, reply));
            !std::mem::replace(&mut queue.writing, true)
        };
        if lead {
            let (conn, queue, write) =
                (Arc::clone(&self.conn), Arc::clone(&self.queue), self.write);
            tokio::task::spawn_blocking(move || drain(&conn, &queue, write));
        }
        answer
            .await
            .map_err(|_| ViewError::Unavailable("webhook store: a write was lost".into()))?
    }
}

/// Write what is waiting, a transaction at a time, until nothing is.
fn drain<J, O>(
    conn: &Mutex<Connection>,
    queue: &Arc<Mutex<Queue<J, O>>>,
    write: fn(&Transaction<'_>, J) -> Result<O, ViewError>,
) {
    let _writing = Writing(Arc::clone(queue));
    loop {
        let jobs = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.waiting.is_empty() {
                queue.writing = false;
                return;
            }
            std::mem::take(&mut queue.waiting)
        };
        let (jobs, replies): (Vec<J>, Vec<Reply<O>>) = jobs.into_iter().unzip();
        let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        let outcome = (|| {
            let tx = conn
                .transaction()
                .map_err(|e| ViewError::Unavailable(format!("webhook store: {e}")))?;
            let outputs = jobs
                .into_iter()
                .map(|job| write(&tx, job))
                .collect::<Result<Vec<O>, ViewError>>()?;
            tx.commit()
                .map_err(|e| ViewError::Unavailable(format!("webhook store: {e}")))?;
            Ok::<_, ViewError>(outputs)
        })();
        drop(conn);
        match outcome {
            Ok(outputs) => {
                for (reply, output) in replies.into_iter().zip(outputs) {
                    let _ = reply.send(Ok(output));
                }
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
