//! Which MongoDB server a suite runs against, told by what the server reports about itself, so a
//! case that meets a known departure of an emulator from MongoDB can say so by name instead of
//! failing or passing silently. The departures are listed in `docs/operations.md` ("MongoDB in CI").
//!
//! This is test support.

use mongodb::bson::{doc, Document};
use mongodb::Client;

/// A server that speaks MongoDB's wire protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// MongoDB itself (or anything that does not name itself otherwise).
    MongoDb,
    /// SecantusDB, an emulator over WiredTiger, with its version (`buildInfo.secantusVersion`).
    Secantus(String),
}

impl Server {
    /// Ask the server at `url` (`buildInfo`). Panics when it does not answer: the suite was told a
    /// server is there.
    pub async fn at(url: &str) -> Self {
        let client = Client::with_uri_str(url)
            .await
            .unwrap_or_else(|e| panic!("MongoDB URL does not parse: {e}"));
        let info = client
            .database("admin")
            .run_command(doc! { "buildInfo": 1 })
            .await
            .unwrap_or_else(|e| panic!("buildInfo on the MongoDB server: {e}"));
        Self::from_build_info(&info)
    }

    /// What a `buildInfo` reply says.
    #[must_use]
    pub fn from_build_info(info: &Document) -> Self {
        match info.get_str("secantusVersion") {
            Ok(version) => Self::Secantus(version.to_owned()),
            Err(_) => Self::MongoDb,
        }
    }

    /// On SecantusDB, say (past the test harness's capture, so every run shows it) that `case` is
    /// skipped because of `departure`, and answer `true`; on MongoDB answer `false`.
    #[must_use]
    pub fn skips_on_secantus(&self, case: &str, departure: &str) -> bool {
        let Some(line) = self.skip_line(case, departure) else {
            return false;
        };
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        true
    }

    /// The line [`Self::skips_on_secantus`] prints, `None` on MongoDB.
    fn skip_line(&self, case: &str, departure: &str) -> Option<String> {
        let Self::Secantus(version) = self else {
            return None;
        };
        Some(format!(
            "SKIPPED on SecantusDB {version}: {case} ({departure})\n"
        ))
    }
}

/// SecantusDB does not evaluate `$$NOW` inside a query's `$expr` (an expired document still matches
/// `$gte: ["$expires_at", "$$NOW"]` and never `$lt`); in an update pipeline it does.
pub const NOW_IN_QUERY_EXPR: &str =
    "the server does not evaluate $$NOW inside a query's $expr, so an expired lease stays live";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_told_by_its_build_info() {
        let secantus = doc! { "version": "8.2.11", "secantusVersion": "0.7.0b3", "ok": 1.0 };
        assert_eq!(
            Server::from_build_info(&secantus),
            Server::Secantus("0.7.0b3".into())
        );
        let mongod = doc! { "version": "8.0.4", "gitVersion": "abc", "ok": 1.0 };
        assert_eq!(Server::from_build_info(&mongod), Server::MongoDb);
        // The line itself, not printed: a run's log shows only the cases really skipped.
        assert_eq!(Server::MongoDb.skip_line("a case", "a departure"), None);
        assert_eq!(
            Server::Secantus("0.7.0b3".into()).skip_line("a case", "a departure"),
            Some("SKIPPED on SecantusDB 0.7.0b3: a case (a departure)\n".to_string())
        );
    }
}
