//! Code-security expert: tree-sitter static analysis with intra-procedural taint tracking, findings as SARIF 2.1.0.
