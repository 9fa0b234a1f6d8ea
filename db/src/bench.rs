//! The bench's statements (sql/bench/).
