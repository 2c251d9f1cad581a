//! Placeholder: replaced by the limits work.
