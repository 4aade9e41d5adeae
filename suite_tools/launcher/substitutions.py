"""The `$(...)` substitution language of ROS 2 launch frontends: parse once, evaluate per scope.

Mirrors launch/frontend/grammar.lark so that a string accepted here is accepted by `ros2 launch`:
`$(name arg arg)` with single spaces between arguments, arguments quoted with ' or " (quoted
arguments may contain spaces and nested substitutions), `\\x` escapes any character, and a bare
`$` not followed by `(` is an error there, so it is an error here too.
Pure: no processes, no file writes.
"""
from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from suite_tools.launcher import package_index
from suite_tools.launcher.errors import LaunchError
from suite_tools.launcher.safe_eval import safe_eval


@dataclass(frozen=True)
class Subst:
    """One `$(name args...)`; each argument is itself a template."""

    name: str
    args: tuple["Template", ...]


Part = Union[str, Subst]
Template = tuple[Part, ...]
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class _Parser:
    """Recursive descent over one string; `quote` is the enclosing quote char inside arguments."""

    def __init__(self, text: str) -> None:
        self.s, self.i = text, 0

    def error(self, msg: str) -> LaunchError:
        return LaunchError(f"bad substitution syntax in {self.s!r} at column {self.i}: {msg}")

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def literal(self, parts: list[Part], ch: str) -> None:
        if parts and isinstance(parts[-1], str):
            parts[-1] += ch
        else:
            parts.append(ch)

    def template(self, stop: str = "") -> Template:
        """Text with embedded substitutions, up to `stop` (a closing quote) or the end."""
        parts: list[Part] = []
        while self.i < len(self.s) and self.peek() != stop:
            ch = self.peek()
            if ch == "$":
                if self.peek(1) != "(":
                    raise self.error("a bare '$' must be written '\\$'")
                parts.append(self.substitution(stop or None))
            elif ch == "\\" and self.peek(1):
                self.literal(parts, self.peek(1))
                self.i += 2
            else:
                self.literal(parts, ch)
                self.i += 1
        return tuple(parts)

    def substitution(self, quote: str | None) -> Subst:
        self.i += 2
        match = _IDENT.match(self.s, self.i)
        if not match:
            raise self.error("expected a substitution name after '$('")
        self.i = match.end()
        args: list[Template] = []
        while self.peek() == " ":
            self.i += 1
            args.append(self.value(quote))
        if self.peek() != ")":
            raise self.error(f"expected ')' or a single space before the next argument of "
                             f"$({match.group()} ...)")
        self.i += 1
        return Subst(match.group(), tuple(args))

    def value(self, quote: str | None) -> Template:
        """One argument: a quoted template, or unquoted text/substitutions without spaces."""
        if quote is None and self.peek() in ("'", '"'):
            q = self.peek()
            self.i += 1
            inner = self.template(stop=q)
            if self.peek() != q:
                raise self.error(f"unterminated {q}-quoted argument")
            self.i += 1
            if self.peek() not in (" ", ")"):
                raise self.error("a quoted argument must be followed by ' ' or ')'")
            return inner
        parts: list[Part] = []
        forbidden = ("'", '"') if quote is None else (quote,)
        while self.peek() not in ("", " ", ")"):
            ch = self.peek()
            if ch == "$" and self.peek(1) == "(":
                parts.append(self.substitution(quote))
            elif ch == "\\" and self.peek(1):
                self.literal(parts, self.peek(1))
                self.i += 2
            elif ch in forbidden or ch in "($":
                raise self.error(f"unexpected {ch!r} in an unquoted argument (escape it or quote)")
            else:
                self.literal(parts, ch)
                self.i += 1
        if not parts:
            raise self.error("empty substitution argument")
        return tuple(parts)


def parse_template(text: str) -> Template:
    """Parse a frontend string into text parts and substitutions (syntax errors raise here)."""
    return _Parser(text).template()


def has_substitutions(template: Template) -> bool:
    return any(isinstance(p, Subst) for p in template)


@dataclass
class Scope:
    """What substitutions read: launch configurations, the launch environment, the current file."""

    configs: dict[str, str]
    environ: dict[str, str]
    file: Path
    anon: dict[str, str] = field(default_factory=dict)


def evaluate(template: Template, scope: Scope) -> str:
    """Perform every substitution of `template` and concatenate the text."""
    return "".join(p if isinstance(p, str) else resolve(p, scope) for p in template)


def _want(sub: Subst, values: list[str], low: int, high: int) -> None:
    if not low <= len(values) <= high:
        n = str(low) if low == high else f"{low}-{high}"
        raise LaunchError(f"$({sub.name}) takes {n} argument(s), got {len(values)}")


def resolve(sub: Subst, scope: Scope) -> str:
    """Value of one substitution; unknown names and failures raise LaunchError."""
    values = [evaluate(a, scope) for a in sub.args]
    name = sub.name
    if name == "var":
        _want(sub, values, 1, 2)
        if values[0] in scope.configs:
            return scope.configs[values[0]]
        if len(values) == 2:
            return values[1]
        known = ", ".join(sorted(scope.configs)) or "none"
        raise LaunchError(f"$(var {values[0]}): launch configuration '{values[0]}' does not "
                          f"exist (defined: {known})")
    if name in ("env", "optenv"):
        _want(sub, values, 1, 2)
        if values[0] in scope.environ:
            return scope.environ[values[0]]
        if len(values) == 2 or name == "optenv":
            return values[1] if len(values) == 2 else ""
        raise LaunchError(f"$(env {values[0]}): environment variable '{values[0]}' is not set "
                          f"(give a default: $(env {values[0]} DEFAULT))")
    if name in ("find-pkg-share", "find-pkg-prefix"):
        _want(sub, values, 1, 1)
        prefix = package_index.package_prefix(values[0], scope.environ)
        return str(prefix / "share" / values[0]) if name == "find-pkg-share" else str(prefix)
    if name == "find-exec":
        _want(sub, values, 1, 1)
        found = shutil.which(values[0], path=scope.environ.get("PATH"))
        if found is None:
            raise LaunchError(f"$(find-exec {values[0]}): not found on PATH")
        return found
    if name in ("dirname", "filename"):
        _want(sub, values, 0, 0)
        return str(scope.file.parent if name == "dirname" else scope.file)
    if name == "anon":
        _want(sub, values, 1, 1)
        return scope.anon.setdefault(values[0], f"{values[0]}_{uuid.uuid4().hex[:12]}")
    if name == "eval":
        _want(sub, values, 1, 1)
        return safe_eval(values[0])
    raise LaunchError(f"unknown or unsupported substitution $({name} ...); supported: var, env, "
                      "optenv, find-pkg-share, find-pkg-prefix, find-exec, dirname, filename, "
                      "anon, eval")


def evaluate_condition(text: str) -> bool:
    """launch's rule: 'true'/'1' or 'false'/'0' after strip().lower(), anything else fails."""
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise LaunchError(f"invalid condition expression {text!r}: expected true, false, 1 or 0")
