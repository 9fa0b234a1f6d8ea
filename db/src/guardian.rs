//! The guardian's statements (sql/guardian/).
