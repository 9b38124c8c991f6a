"""The boards a remote run drives: ``--on HOST`` (anything ``ssh`` accepts) and ``--hosts FILE``, an Ansible
inventory in YAML or INI form, narrowed by ``--limit PATTERN``.

The inventory is read as Ansible reads it (its "How to build your inventory" guide): groups, ``children``,
``hosts``, ``vars`` and ``[group:vars]`` / ``[group:children]`` sections, host ranges (``pi[1:4].local``,
``node-[a:c]``, a stride ``[01:10:2]``), group variables applied from the ``all`` group down to the deepest
group (siblings by name), host variables last. The variables accel uses are Ansible's connection variables:
``ansible_host``, ``ansible_user``, ``ansible_port``, ``ansible_ssh_private_key_file`` and
``ansible_python_interpreter`` (the Python that runs accel on that board); ``accel_dir`` (the board's cache and
run folders) is accel's own. A limit pattern is Ansible's: names and globs, ``a:b`` (either), ``a:&b`` (both),
``a:!b`` (not b), ``~regex``, commas for colons.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from accel.core.errors import ConfigError
from accel.remote.boards import Board, expand_range

__all__ = ["Inventory", "read_inventory"]


@dataclass
class Inventory:
    """Groups (each: its hosts, child groups, variables) and hosts (each: its own variables), as read."""

    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""

    def group(self, name: str) -> dict[str, Any]:
        return self.groups.setdefault(name, {"hosts": [], "children": [], "vars": {}})

    def add_host(self, group: str, pattern: str, variables: Mapping[str, Any], where: str = "") -> None:
        try:
            names = expand_range(pattern)
        except ConfigError as exc:
            raise ConfigError(f"{where or self.source}: {exc}") from None
        for name in names:
            self.hosts.setdefault(name, {}).update(variables)
            if name not in self.group(group)["hosts"]:
                self.group(group)["hosts"].append(name)

    def parents(self) -> dict[str, set[str]]:
        """Each group's parent groups; a cycle of children is a ConfigError."""
        parents: dict[str, set[str]] = {g: set() for g in self.groups}
        for name, group in self.groups.items():
            for child in group["children"]:
                parents.setdefault(child, set()).add(name)
        return parents

    def depths(self) -> dict[str, int]:
        """How deep each group is below ``all`` (Ansible applies shallower groups' variables first)."""
        parents = self.parents()
        depths: dict[str, int] = {}

        def depth(group: str, path: tuple[str, ...]) -> int:
            if group in path:
                raise ConfigError(f"{self.source}: the groups {' -> '.join((*path, group))} are their own children")
            if group not in depths:
                above = [depth(p, (*path, group)) for p in parents.get(group, ()) if p != "all"]
                depths[group] = 0 if group == "all" else 1 + max(above, default=0)
            return depths[group]

        for group in self.groups:
            depth(group, ())
        return depths

    def groups_of(self, host: str) -> list[str]:
        """Every group ``host`` is in, directly or through children, ``all`` first, deepest last."""
        direct = {g for g, group in self.groups.items() if host in group["hosts"]}
        parents, found = self.parents(), set()
        todo = list(direct)
        while todo:
            group = todo.pop()
            if group not in found:
                found.add(group)
                todo.extend(parents.get(group, ()))
        found.add("all")
        depths = self.depths()
        return sorted(found, key=lambda g: (depths.get(g, 0), g))

    def boards(self) -> list[Board]:
        """Every host as a Board, in the order the inventory names them, its variables merged."""
        out = []
        for host, own in self.hosts.items():
            groups = self.groups_of(host)
            variables: dict[str, Any] = {}
            for group in groups:
                variables.update(self.groups.get(group, {}).get("vars", {}))
            variables.update(own)
            out.append(Board.of(host, variables, [g for g in groups if g != "all"], f"{self.source}: "))
        return out

    def members(self, group: str) -> list[str]:
        """The hosts of a group and of its children, in inventory order."""
        seen: list[str] = []
        todo, visited = [group], set()
        while todo:
            name = todo.pop(0)
            if name in visited:
                continue
            visited.add(name)
            seen += [h for h in self.groups.get(name, {}).get("hosts", []) if h not in seen]
            todo += self.groups.get(name, {}).get("children", [])
        return [h for h in self.hosts if h in seen] if group != "all" else list(self.hosts)

    def select(self, pattern: str) -> list[Board]:
        """The boards an Ansible host pattern picks, in inventory order; a pattern that picks nothing is a
        ConfigError naming the groups and hosts there are."""
        text = pattern.strip()
        # Ansible's split: commas when there are any, else colons outside [...] (a range such as pi[1:3])
        terms = [t.strip() for t in (text.split(",") if "," in text else re.split(r":(?![^\[]*\])", text))]
        terms = [t for t in terms if t]
        if not terms:
            raise ConfigError(f"option --limit: {pattern!r} names no group or host")
        # Ansible's order: the plain terms (or all, when there are none), then each &, then each !
        plain = [t for t in terms if t[0] not in "&!"]
        chosen: list[str] = []
        for term in plain or ["all"]:
            chosen += [h for h in self._matching(term) if h not in chosen]
        for term in (t for t in terms if t[0] == "&"):
            names = self._matching(term[1:])
            chosen = [h for h in chosen if h in names]
        for term in (t for t in terms if t[0] == "!"):
            names = self._matching(term[1:])
            chosen = [h for h in chosen if h not in names]
        if not chosen:
            raise ConfigError(f"option --limit: {pattern!r} picks no host of {self.source}; its groups: "
                              f"{', '.join(g for g in self.groups if g != 'all') or 'none'}; its hosts: "
                              f"{', '.join(self.hosts) or 'none'}")
        by_name = {b.name: b for b in self.boards()}
        return [by_name[h] for h in self.hosts if h in chosen]

    def _matching(self, term: str) -> list[str]:
        if term.startswith("~"):
            try:
                rx = re.compile(term[1:])
            except re.error as exc:
                raise ConfigError(f"option --limit: {term!r} is not a regular expression ({exc})") from None
            groups = [g for g in self.groups if rx.match(g)]  # anchored at the start, as Ansible's re.match
            hosts = [h for h in self.hosts if rx.match(h)]
        else:
            groups = [g for g in self.groups if fnmatch.fnmatchcase(g, term)]
            hosts = [h for h in self.hosts if fnmatch.fnmatchcase(h, term)]
        names = list(hosts)
        for group in groups:
            names += [h for h in self.members(group) if h not in names]
        return names


def read_inventory(path: str | Path) -> Inventory:
    """An Ansible inventory file: YAML (a mapping of groups) or INI (``[group]`` sections, host lines with
    ``key=value`` variables). Any problem is one ConfigError naming the file and what is wrong."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"option --hosts: {path}: no such inventory file") from None
    except IsADirectoryError:
        raise ConfigError(f"option --hosts: {path} is a folder; give an Ansible inventory file (YAML or INI)") \
            from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"option --hosts: {path} cannot be read ({exc.__class__.__name__}: {exc})") from None
    inventory = Inventory(source=str(path))
    inventory.group("all")
    suffix = p.suffix.lower()
    if suffix in (".yml", ".yaml", ".json") or (suffix not in (".ini", ".cfg") and not _looks_ini(text)):
        _read_yaml(inventory, text)
    else:
        _read_ini(inventory, text)
    inventory.depths()  # a cycle of children is said now
    if not inventory.hosts:
        raise ConfigError(f"{path}: the inventory names no host")
    return inventory


def _looks_ini(text: str) -> bool:
    """A file without a telling suffix is YAML when it parses as a mapping of groups, else INI."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:  # broken YAML is said as YAML when it starts as YAML does (a key and a colon)
        first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
        return not re.match(r"[\w.-]+:(\s|$)", first)
    return not (isinstance(data, dict) and all(v is None or isinstance(v, dict) for v in data.values()))


def _read_yaml(inventory: Inventory, text: str) -> None:
    source = inventory.source
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{source}: not a YAML inventory{at}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of groups (all: hosts: ...), got {type(data).__name__}")

    def group(name: str, body: Any, parent: str | None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{source}: group name {name!r} is not text")
        entry = inventory.group(name)
        if parent and name not in inventory.group(parent)["children"] and name != "all":
            inventory.group(parent)["children"].append(name)
        if body is None:
            return
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: group {name}: expected hosts, children or vars, got {body!r}")
        unknown = set(body) - {"hosts", "children", "vars"}
        if unknown:
            raise ConfigError(f"{source}: group {name}: unknown key {sorted(map(str, unknown))[0]!r}; a group has "
                              "hosts, children and vars")
        hosts = body.get("hosts") or {}
        if not isinstance(hosts, dict):
            raise ConfigError(f"{source}: group {name}: hosts must be a mapping (host: its variables), got {hosts!r}")
        for host, variables in hosts.items():
            if variables is not None and not isinstance(variables, dict):
                raise ConfigError(f"{source}: host {host}: expected its variables as a mapping, got {variables!r}")
            inventory.add_host(name, str(host), variables or {})
        variables = body.get("vars") or {}
        if not isinstance(variables, dict):
            raise ConfigError(f"{source}: group {name}: vars must be a mapping, got {variables!r}")
        entry["vars"].update(variables)
        children = body.get("children") or {}
        if not isinstance(children, dict):
            raise ConfigError(f"{source}: group {name}: children must be a mapping of groups, got {children!r}")
        for child, child_body in children.items():
            group(child, child_body, name)

    for name, body in data.items():
        group(name, body, None if name == "all" else "all")


_INI_SECTION = re.compile(r"\[([^\]:]+)(?::(vars|children))?\]")


def _read_ini(inventory: Inventory, text: str) -> None:
    section, kind = "ungrouped", ""
    inventory.group("all")["children"].append("ungrouped")
    inventory.group("ungrouped")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        where = f"{inventory.source} (line {number})"
        if line.startswith("["):
            found = _INI_SECTION.fullmatch(line)
            if not found:
                raise ConfigError(f"{where}: {line!r} is not a section; expected [group], [group:vars] or "
                                  "[group:children]")
            section, kind = found.group(1).strip(), found.group(2) or ""
            inventory.group(section)
            if section != "all" and section not in inventory.group("all")["children"]:
                inventory.group("all")["children"].append(section)
            continue
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"{where}: expected key=value in [{section}:vars], got {line!r}")
            inventory.group(section)["vars"][key.strip()] = _ini_value(value.strip(), where)
        elif kind == "children":
            child = line.split()[0]
            inventory.group(child)
            if child not in inventory.group(section)["children"]:
                inventory.group(section)["children"].append(child)
        else:
            parts = _split_ini(line, where)
            variables = {}
            for part in parts[1:]:
                key, sep, value = part.partition("=")
                if not sep or not key:
                    raise ConfigError(f"{where}: expected key=value after the host name, got {part!r}")
                variables[key] = _ini_value(value, where)
            name, port = parts[0], re.fullmatch(r"(.+?):(\d+)", parts[0])
            if port:  # badwolf.example.com:5309, as Ansible's INI allows
                name = port.group(1)
                variables.setdefault("ansible_port", int(port.group(2)))
            inventory.add_host(section, name, variables, where)
    ungrouped = inventory.groups["ungrouped"]
    if not ungrouped["hosts"] and not ungrouped["children"]:
        del inventory.groups["ungrouped"]
        inventory.group("all")["children"].remove("ungrouped")


def _split_ini(line: str, where: str) -> list[str]:
    import shlex

    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        return list(lexer)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}: {line!r}") from None


def _ini_value(value: str, where: str) -> Any:
    """A variable's value in an INI inventory: numbers and true/false as Ansible's INI reader takes them,
    quoted text unquoted, anything else as written."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value
