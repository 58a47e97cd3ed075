#!/usr/bin/env python3
"""Facts the READMEs state that the tree can check (run by `make lint`):

- every file path they name in backticks exists in this repository (the
  behaviour contract once pointed at ../shared/design/SPEC.md, outside it);
- the wheel file name they give carries the platform tags `make dist` writes
  (scripts/dist.py's TARGETS), with `<arch>` for the architecture.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "hosts/python/README.md", "hosts/node/README.md", "docs/SPEC.md"]
FILE = re.compile(r"[\w./-]+\.(rs|md|py|mjs|js|ts|toml|txt|sh|wit|json|lock)")


def named_paths(doc: str, text: str) -> list[str]:
    """Paths in backticks that do not exist here (relative to the root or the doc)."""
    bad = []
    for token in re.findall(r"`([^`\s]+)`", text):
        if "/" not in token or not FILE.fullmatch(token) or token.startswith("/"):
            continue
        here = [ROOT / token, (ROOT / doc).parent / token]
        if ".." in token.split("/") or not any(p.resolve().is_relative_to(ROOT) and p.exists() for p in here):
            bad.append(f"{doc}: `{token}` is not a file in this repository")
    return bad


def wheel_names(texts: dict[str, str]) -> list[str]:
    dist = (ROOT / "scripts/dist.py").read_text()
    problems = []
    # One family of platform tags per libc; a doc that names a wheel of that
    # family names it as dist.py writes it.
    for family, required in (("manylinux", True), ("musllinux", False)):
        tags = set(re.findall(rf'"({family}[^"]*)"\)', dist))
        if not tags:
            if required:
                problems.append(f"scripts/dist.py: no {family} wheel platform tag found in TARGETS")
            continue
        generic = {re.sub(r"x86_64|aarch64", "<arch>", t) for t in tags}
        if len(generic) != 1:
            problems.append(f"scripts/dist.py: {family} tags differ beyond the architecture: {sorted(tags)}")
            continue
        want = f"cp311-abi3-{generic.pop()}.whl"
        problems += [
            f"{doc}: names a {family} wheel, but not as `make dist` writes it (...-{want})"
            for doc in ("README.md", "hosts/python/README.md")
            if f"-{family}" in texts[doc] and want not in texts[doc]
        ]
    return problems


def main() -> int:
    texts = {doc: (ROOT / doc).read_text() for doc in DOCS}
    problems = [p for doc, text in texts.items() for p in named_paths(doc, text)] + wheel_names(texts)
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"docs: every named file exists; wheel names match dist.py ({', '.join(DOCS)})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
