//! The bundled SQLite as the workspace builds it (`.cargo/config.toml`, decision 0042): no
//! process-wide page-cache pool and no memory statistics, so each connection's page cache is its own
//! and no allocation or page fetch takes a global mutex.

use rusqlite::Connection;

#[test]
fn sqlite_is_built_without_the_shared_page_cache_pool_and_memory_statistics() {
    let conn = Connection::open_in_memory().expect("open");
    let mut statement = conn
        .prepare("SELECT compile_options FROM pragma_compile_options")
        .expect("prepare");
    let options: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .expect("query")
        .map(|option| option.expect("option"))
        .collect();
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "memory statistics are on (a global mutex on every allocation): {options:?}"
    );
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "the page caches share one pool (a global mutex on every page fetch): {options:?}"
    );
}
