"""The command-line flags a training script declares with argparse, read from its source.

Usage: python3 -I argparse-flags.py SCRIPT  ->  one JSON object on stdout:

  {"argparse": false}                                 the script does not import argparse
  {"argparse": true, "flags": ["--lr", ...], "allowAbbrev": true}
  {"argparse": true, "open": "why"}                   flags this file alone cannot list
  {"error": "why"}                                    the source could not be parsed

The script is parsed with `ast` and never executed or imported: nothing at its top level runs.
Run with -I so that neither the script's directory nor PYTHONPATH can put a module of the
user's in front of the standard library's `ast` or `json`.
"""

import ast
import json
import sys

OPEN_METHODS = {
    "parse_known_args": "it calls parse_known_args, which accepts flags it does not declare",
    "parse_known_intermixed_args": "it calls parse_known_intermixed_args, which accepts flags it does not declare",
    "add_subparsers": "it has subcommands, whose flags depend on the command",
}


def called_name(node):
    """`parser.add_argument` -> 'add_argument'; `ArgumentParser` -> 'ArgumentParser'."""
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def imports_argparse(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(alias.name == "argparse" for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "argparse":
            return True
    return False


def imported_names(tree):
    """Names that modules other than argparse bind here (`import config`, `from opts import add_args`)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "argparse")
        elif isinstance(node, ast.ImportFrom) and node.module != "argparse":
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def callee_root(node):
    """`config.add_args` -> 'config'; `add_args` -> 'add_args'."""
    func = node.func
    while isinstance(func, ast.Attribute):
        func = func.value
    return func.id if isinstance(func, ast.Name) else None


def parser_names(tree):
    """Names bound to an ArgumentParser, an argument group or a mutually exclusive group."""
    names = set()
    makers = {"ArgumentParser", "add_argument_group", "add_mutually_exclusive_group"}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call) and called_name(node.value) in makers:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
    return names


def read_flags(source):
    tree = ast.parse(source)
    if not imports_argparse(tree):
        return {"argparse": False}
    imported = imported_names(tree)
    parsers = parser_names(tree)
    flags = []
    allow_abbrev = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = called_name(node)
        if name in OPEN_METHODS:
            return {"argparse": True, "open": OPEN_METHODS[name]}
        if name == "ArgumentParser":
            for keyword in node.keywords:
                if keyword.arg == "allow_abbrev":
                    allow_abbrev.append(isinstance(keyword.value, ast.Constant) and keyword.value.value is not False)
                elif keyword.arg == "prefix_chars":
                    return {"argparse": True, "open": "it sets prefix_chars"}
                elif keyword.arg == "parents":
                    elements = keyword.value.elts if isinstance(keyword.value, (ast.List, ast.Tuple)) else [keyword.value]
                    if not all(isinstance(e, ast.Name) and e.id in parsers for e in elements):
                        return {"argparse": True, "open": "its parser inherits from parsers defined elsewhere"}
                elif keyword.arg is None:
                    return {"argparse": True, "open": "its parser is built from **keyword arguments"}
            continue
        if name == "add_argument":
            for argument in node.args:
                if isinstance(argument, ast.Starred) or not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
                    return {"argparse": True, "open": "it declares a flag whose name is computed"}
                if argument.value.startswith("-"):
                    flags.append(argument.value)
            continue
        # A parser handed to a function of another module may gain flags this file does not show.
        passed = [a for a in node.args if isinstance(a, ast.Name) and a.id in parsers]
        passed += [k.value for k in node.keywords if isinstance(k.value, ast.Name) and k.value.id in parsers]
        if passed and callee_root(node) in imported:
            return {"argparse": True, "open": "its parser is passed to %s, defined in another module" % name}
    return {"argparse": True, "flags": sorted(set(flags)), "allowAbbrev": all(allow_abbrev) if allow_abbrev else True}


def main(argv):
    if len(argv) != 2:
        print(json.dumps({"error": "usage: argparse-flags.py SCRIPT"}))
        return 2
    try:
        with open(argv[1], "rb") as handle:
            source = handle.read()
        report = read_flags(source)
    except SyntaxError as error:
        report = {"error": "line %s: %s" % (error.lineno, error.msg)}
    except (OSError, ValueError, RecursionError) as error:
        report = {"error": str(error)}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
