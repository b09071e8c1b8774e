//! The one conformance suite every [`crate::ViewStore`] adapter passes.
