//! The pure projection shared by every store adapter.
