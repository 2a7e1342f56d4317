//! Placeholder: see the issue list.
