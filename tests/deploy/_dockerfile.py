"""A small reader of deploy/Dockerfile: stages, ENV, COPY, RUN and the exec-form CMD/HEALTHCHECK.

Enough for the tests to run, outside a container, exactly what the image runs (no container engine can
pull a base image on this machine)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for ins, args in self.instructions if ins == instruction]

    def env(self) -> dict[str, str]:
        """ENV key=value pairs in order (values as written: ``$PATH`` is left for the caller)."""
        out: dict[str, str] = {}
        for args in self.all("ENV"):
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                out[key] = value
        return out

    def copies(self) -> dict[str, str]:
        """COPY from the build context (no --from): destination -> source."""
        out: dict[str, str] = {}
        for args in self.all("COPY"):
            parts = args.split()
            if not any(p.startswith("--from") for p in parts):
                out[parts[-1]] = parts[-2]
        return out

    def exec_form(self, instruction: str) -> list[str]:
        (args,) = self.all(instruction)
        if instruction == "HEALTHCHECK":
            args = args[args.index("CMD") + len("CMD"):]
        argv = json.loads(args)
        assert isinstance(argv, list)
        return [str(a) for a in argv]


def instructions(text: str) -> list[tuple[str, str]]:
    """Logical lines (continuations joined, comments and parser directives dropped) as (INSTRUCTION, args)."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line, pending = pending + line, ""
        ins, _, args = line.partition(" ")
        out.append((ins.upper(), args.strip()))
    return out


def stages(text: str) -> list[Stage]:
    result: list[Stage] = []
    args: dict[str, str] = {}
    for ins, rest in instructions(text):
        if ins == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert m, rest
            base = re.sub(r"\$\{(\w+)\}", lambda v: args.get(v.group(1), v.group(0)), m.group(1))
            result.append(Stage(base, m.group(2)))
        elif not result and ins == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
        elif result:
            result[-1].instructions.append((ins, rest))
    return result
