#!/usr/bin/env python3
"""Prints the code of a wasm module by crate, largest first, as Markdown table rows.

    python3 tests/bench/wasm_size.py target/wasm32-wasip1/release/portcullis.wasm [ROWS]

It reads the function names of the module's `name` section (the release profile keeps
them), so it takes the module before wasm-opt, which drops them. A function counts for
the crate its symbol starts with; for a trait impl that is the implementing type's crate.
"""

import collections
import re
import sys


def leb128(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def sections(data):
    at = 8
    while at < len(data):
        kind = data[at]
        size, at = leb128(data, at + 1)
        yield kind, data[at : at + size]
        at += size


def function_names(custom):
    length, at = leb128(custom, 0)
    if custom[at : at + length] != b"name":
        return {}
    at += length
    names = {}
    while at < len(custom):
        kind = custom[at]
        size, at = leb128(custom, at + 1)
        end = at + size
        if kind == 1:
            count, cursor = leb128(custom, at)
            for _ in range(count):
                index, cursor = leb128(custom, cursor)
                length, cursor = leb128(custom, cursor)
                names[index] = custom[cursor : cursor + length].decode("utf-8", "replace")
                cursor += length
        at = end
    return names


def imported_functions(imports):
    count, at = leb128(imports, 0)
    functions = 0
    for _ in range(count):
        for _ in range(2):
            length, at = leb128(imports, at)
            at += length
        kind = imports[at]
        at += 1
        if kind != 0:
            sys.exit("only function imports are expected")
        _, at = leb128(imports, at)
        functions += 1
    return functions


def crate_of(symbol):
    """The first path segment of a legacy-mangled Rust symbol (`_ZN...`)."""
    match = re.match(r"_ZN(\d+)", symbol)
    if not match:
        return "(other)"
    ident = symbol[match.end() : match.end() + int(match.group(1))]
    ident = ident.replace("$LT$", "").replace("$RF$", "").lstrip("_")
    return ident.split("..")[0].split("$")[0] or "(other)"


def main():
    data = open(sys.argv[1], "rb").read()
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    parts = list(sections(data))
    imports = next((body for kind, body in parts if kind == 2), b"\x00")
    code = next(body for kind, body in parts if kind == 10)
    names = {}
    for kind, body in parts:
        if kind == 0:
            names.update(function_names(body))
    data_bytes = sum(len(body) for kind, body in parts if kind == 11)
    first = imported_functions(imports)
    sizes = collections.Counter()
    count, at = leb128(code, 0)
    for index in range(count):
        size, at = leb128(code, at)
        sizes[crate_of(names.get(first + index, ""))] += size
        at += size
    print(f"| data segments | {data_bytes} |")
    for crate, size in sizes.most_common(rows):
        print(f"| {crate} | {size} |")


if __name__ == "__main__":
    main()
