//! The scheduler's statements (sql/scheduler/).
