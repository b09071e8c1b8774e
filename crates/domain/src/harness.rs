//! Given/when/then test harness for aggregates.
