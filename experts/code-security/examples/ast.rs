//! Prints the tree-sitter syntax tree of a file (for writing rules).
//!
//! ```text
//! cargo run -p synod-expert-code-security --example ast -- <file>
//! ```

use std::path::Path;

use synod_expert_code_security::Language;

fn print(node: tree_sitter::Node<'_>, source: &[u8], depth: usize) {
    let text = node.utf8_text(source).unwrap_or_default();
    let first = text.lines().next().unwrap_or_default();
    println!(
        "{:indent$}{} {:?}",
        "",
        node.kind(),
        first,
        indent = depth * 2
    );
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        print(child, source, depth + 1);
    }
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: ast <file>");
        return;
    };
    let Some(language) = Language::from_path(Path::new(&path)) else {
        eprintln!("unsupported file type: {path}");
        return;
    };
    let source = std::fs::read_to_string(&path).unwrap_or_default();
    let mut parser = tree_sitter::Parser::new();
    if parser.set_language(&language.grammar()).is_err() {
        eprintln!("cannot load the grammar");
        return;
    }
    if let Some(tree) = parser.parse(&source, None) {
        print(tree.root_node(), source.as_bytes(), 0);
    }
}
