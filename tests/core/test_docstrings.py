"""Every public function and method of the core says, in Google style, what it takes, what it
gives back and what it raises: an ``Args:`` section naming each parameter, ``Returns:`` (or
``Yields:``) when it returns a value, and ``Raises:`` naming each exception it raises itself.

Public means: named in the module's ``__all__``, or, where a module has none, a name that does
not start with ``_``; methods of such classes likewise. Dunders, properties and typer commands
(whose docstring is the command's ``--help``) need only a docstring; ``@overload`` stubs none;
a method that implements a ``typing.Protocol`` of its module is documented once, on the Protocol.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "ssl_eval"
SECTION = re.compile(r"^\s*(Args|Arguments|Returns|Yields|Raises|Examples?|Notes?|Attributes|See Also|Warnings?):\s*$")
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def _sections(doc: str) -> dict[str, list[str]]:
    """Split a Google-style docstring into {section name: its lines}."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in doc.splitlines():
        match = SECTION.match(line)
        if match:
            current = sections.setdefault(match.group(1), [])
        elif current is not None:
            current.append(line)
    return sections


def _own_nodes(function: FunctionNode):
    """The nodes of a function's body, not those of functions or classes nested in it."""
    todo = list(function.body)
    while todo:
        node = todo.pop()
        yield node
        todo.extend(
            child for child in ast.iter_child_nodes(node) if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef))
        )


def _raised_names(function: FunctionNode) -> set[str]:
    names = set()
    for node in _own_nodes(function):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id[:1].isupper():
                names.add(exc.id)
            elif isinstance(exc, ast.Attribute) and exc.attr[:1].isupper():
                names.add(exc.attr)  # typer.Exit
            elif isinstance(exc, ast.Attribute) and isinstance(exc.value, ast.Name):
                names.add(exc.value.id)  # WorkdirError.writing(...): a factory of the class
    return names


def _returns_value(function: FunctionNode) -> bool:
    if function.returns is not None:
        return ast.unparse(function.returns) not in ("None", "NoReturn", "Never", "typing.NoReturn")
    return any(isinstance(node, ast.Return) and node.value is not None for node in _own_nodes(function))


def _is_generator(function: FunctionNode) -> bool:
    return any(isinstance(node, (ast.Yield, ast.YieldFrom)) for node in _own_nodes(function))


def _decorator_names(function: FunctionNode) -> set[str]:
    return {ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in function.decorator_list}


def _problems(function: FunctionNode) -> list[str]:
    if _decorator_names(function) & {"overload", "typing.overload"}:
        return []  # the implementation below the overloads carries the docstring
    doc = ast.get_docstring(function)
    if not doc:
        return ["no docstring"]
    decorators = _decorator_names(function)
    property_like = decorators & {"property", "cached_property", "functools.cached_property"}
    typer_command = any(d.split(".")[-1] in ("command", "callback") for d in decorators)
    if function.name.startswith("__") or property_like or typer_command:
        return []
    sections = _sections(doc)
    problems = []
    args = function.args
    params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.arg not in ("self", "cls")]
    params += [f"*{args.vararg.arg}"] if args.vararg else []
    params += [f"**{args.kwarg.arg}"] if args.kwarg else []
    if params:
        documented = "\n".join(sections.get("Args", []) + sections.get("Arguments", []))
        missing = [p for p in params if not re.search(rf"^\s*{re.escape(p)}\s*(\(.*\))?\s*:", documented, re.M)]
        if "Args" not in sections and "Arguments" not in sections:
            problems.append("no Args: section")
        elif missing:
            problems.append(f"Args: does not name {', '.join(missing)}")
    if _is_generator(function):
        if "Yields" not in sections:
            problems.append("no Yields: section")
    elif _returns_value(function) and "Returns" not in sections:
        problems.append("no Returns: section")
    raised = _raised_names(function) - {"NotImplementedError"}
    if raised:
        listed = "\n".join(sections.get("Raises", []))
        unnamed = sorted(name for name in raised if not re.search(rf"\b{name}\b", listed))
        if "Raises" not in sections:
            problems.append(f"no Raises: section (raises {', '.join(sorted(raised))})")
        elif unnamed:
            problems.append(f"Raises: does not name {', '.join(unnamed)}")
    return problems


def _is_protocol(node: ast.ClassDef) -> bool:
    return any(ast.unparse(base).split("[")[0].split(".")[-1] == "Protocol" for base in node.bases)


def _public_names(tree: ast.Module) -> set[str] | None:
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and isinstance(node.value, (ast.List, ast.Tuple)):
                return {elt.value for elt in node.value.elts if isinstance(elt, ast.Constant)}
    return None


def undocumented(root: Path = CORE) -> list[str]:
    """Each public function or method of the core whose docstring misses a section, as 'file:line name: problems'."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name.startswith("mlflow_"):  # moved from tasks/ into the core; ruff's D rules take this over
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        public = _public_names(tree)

        def is_public(name: str, public: set[str] | None = public) -> bool:
            return name in public if public is not None else not name.startswith("_")

        where = path.relative_to(root.parent)
        # a method that implements a typing.Protocol of its module is documented there, once
        interface = {item.name for node in tree.body if isinstance(node, ast.ClassDef) and _is_protocol(node)
                     for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_public(node.name):
                found += [f"{where}:{node.lineno} {node.name}: {'; '.join(p)}" for p in [_problems(node)] if p]
            elif isinstance(node, ast.ClassDef) and is_public(node.name):
                inherited = set() if _is_protocol(node) else interface
                for item in node.body:
                    if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) or item.name in inherited:
                        continue
                    if not item.name.startswith("_") or item.name == "__call__":
                        found += [f"{where}:{item.lineno} {node.name}.{item.name}: {'; '.join(p)}" for p in [_problems(item)] if p]
    return found


def test_every_public_function_of_the_core_documents_args_returns_and_raises():
    problems = undocumented()
    if problems:
        pytest.fail(f"{len(problems)} public functions of ssl_eval/ lack Google-style sections:\n" + "\n".join(problems), pytrace=False)


def test_the_check_names_what_is_missing(tmp_path):
    (tmp_path / "ssl_eval").mkdir()
    (tmp_path / "ssl_eval" / "m.py").write_text(
        "def ok(x: int) -> int:\n"
        '    """Double.\n\n    Args:\n        x: a number.\n\n    Returns:\n        Twice x.\n\n    Raises:\n        ValueError: x < 0.\n    """\n'
        "    if x < 0:\n        raise ValueError(x)\n    return 2 * x\n\n"
        "def bare(x, *, y=1):\n    '''Only a summary.'''\n    if x:\n        raise TypeError(x)\n    return x\n\n"
        "def half(x, y):\n    '''Half.\n\n    Args:\n        x: one.\n    '''\n\n"
        "def _private(x):\n    return x\n"
    )
    (tmp_path / "ssl_eval" / "n.py").write_text(
        "from typing import Protocol\n"
        "__all__ = ['Store', 'Local', 'wrong']\n"
        "class Store(Protocol):\n"
        "    def get(self, key: str) -> str:\n"
        '        """The value.\n\n        Args:\n            key: which.\n\n        Returns:\n            It.\n        """\n'
        "class Local:\n"
        "    def get(self, key: str) -> str:\n        return key\n"
        "    def path(self, key: str) -> str:\n        return key\n"
        "    @property\n    def root(self) -> str:\n        '''Where.'''\n        return ''\n"
        "def wrong(x):\n    '''Check.\n\n    Args:\n        x: a value.\n\n    Raises:\n        TypeError: never.\n    '''\n"
        "    raise ValueError(x)\n"
        "def unlisted(x):\n    return x\n"
    )
    problems = undocumented(tmp_path / "ssl_eval")
    assert problems == [
        "ssl_eval/m.py:17 bare: no Args: section; no Returns: section; no Raises: section (raises TypeError)",
        "ssl_eval/m.py:23 half: Args: does not name y",
        # Local.get is documented on the Protocol, the property needs only a summary, unlisted is not in __all__
        "ssl_eval/n.py:16 Local.path: no docstring",
        "ssl_eval/n.py:22 wrong: Raises: does not name ValueError",
    ]


if __name__ == "__main__":  # pragma: no cover - a quick listing while writing docstrings
    print("\n".join(undocumented()))
