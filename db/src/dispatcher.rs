//! The dispatcher's statements (sql/dispatcher/).
