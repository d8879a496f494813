"""The Swift client guide has no compiler on this machine: it is parsed with the tree-sitter Swift
grammar, so at least a syntax error (an unbalanced brace, a broken string) fails the build. The
check is shown to catch one. Kotlin, Python and JavaScript guides are compiled and run for real in
tests/integration/test_clients.py."""

from __future__ import annotations

from pathlib import Path

import tree_sitter_swift
from tree_sitter import Language, Node, Parser

SWIFT = Path(__file__).resolve().parents[2] / "docs" / "clients" / "swift" / "VisionClient.swift"


def syntax_errors(source: bytes) -> list[str]:
    tree = Parser(Language(tree_sitter_swift.language())).parse(source)
    found: list[str] = []

    def walk(node: Node) -> None:
        if node.is_error or node.is_missing:
            found.append(f"line {node.start_point[0] + 1}: {node.type}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return found


def test_swift_guide_parses_without_errors() -> None:
    assert syntax_errors(SWIFT.read_bytes()) == []


def test_the_check_catches_a_broken_file() -> None:
    broken = SWIFT.read_bytes().replace(
        b"return .refused(message: fallbackText, code: -1)", b"return .refused(", 1
    )
    assert syntax_errors(broken)
