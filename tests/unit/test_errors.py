"""The exception tree drawn in errors.py is the tree the code has, and every code is unique per class."""

from __future__ import annotations

import re

from gateway import errors


def subclasses(cls: type[errors.GatewayError]) -> set[type[errors.GatewayError]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= subclasses(sub)
    return found


def gateway_classes() -> set[type[errors.GatewayError]]:
    return {cls for cls in subclasses(errors.GatewayError) if cls.__module__ == "gateway.errors"}


def test_every_class_is_drawn_under_its_parent() -> None:
    """Each class name in the docstring's tree sits one level under its real base class."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (column of the name, name)
    for line in (errors.__doc__ or "").splitlines():
        match = re.search(r"(?:── |^\s{4})([A-Z]\w+)\s", line)
        if match is None or not isinstance(vars(errors).get(match.group(1)), type):
            continue
        column, name = match.start(1), match.group(1)
        while stack and stack[-1][0] >= column:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((column, name))
    for cls in gateway_classes():
        assert cls.__name__ in parents, f"{cls.__name__} is missing from the drawn tree"
        assert parents[cls.__name__] == cls.__mro__[1].__name__, cls.__name__


def test_codes_follow_the_status() -> None:
    for cls in gateway_classes() | {errors.GatewayError}:
        assert cls.code // 100 == cls.status, cls.__name__


def test_all_errors_lists_one_class_per_code() -> None:
    codes = [cls.code for cls in errors.ALL_ERRORS]
    assert len(codes) == len(set(codes))
    assert {cls.code for cls in gateway_classes()} <= set(codes) | {40001, 50001}
