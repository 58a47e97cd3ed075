#!/usr/bin/env python3
"""`make dist`: the installable artifacts for x86_64 and aarch64 Linux in dist/.

Per target triple, ONE cargo invocation (cargo-zigbuild, linking against
glibc 2.17 so the binaries run on manylinux2014 and every Lambda runtime)
builds the CLI, the Node addon and the Python extension, so their shared
dependencies compile once. Then:

- Python: an abi3 (cp311+) wheel tagged manylinux2014, packed here from the
  built extension (maturin would build the crate a second time with other
  compiler settings); checked by `auditwheel show` in dist-check;
- Node: the per-platform npm package and the main package (with
  optionalDependencies on them), as `npm pack` tarballs;
- CLI: `linear-oauth-<version>-<triple>.tar.gz` with README and licences.

One version everywhere: the workspace version from Cargo.toml.
Usage: dist.py [--target TRIPLE ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    # triple: (npm platform, npm cpu, wheel platform tag)
    "x86_64-unknown-linux-gnu": ("linux-x64-gnu", "x64", "manylinux_2_17_x86_64.manylinux2014_x86_64"),
    "aarch64-unknown-linux-gnu": ("linux-arm64-gnu", "arm64", "manylinux_2_17_aarch64.manylinux2014_aarch64"),
}
GLIBC = "2.17"
PROFILE = "dist"


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def workspace_version() -> str:
    return tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")


def build(triple: str) -> Path:
    """Builds the three artifacts for `triple`; returns cargo's output dir."""
    env = dict(os.environ)
    # The Python extension must not link libpython (the interpreter provides it).
    env["PYO3_BUILD_EXTENSION_MODULE"] = "1"
    run(
        # --locked: the artifacts are built from exactly Cargo.lock.
        ["cargo", "zigbuild", "--locked", "--profile", PROFILE, "--target", f"{triple}.{GLIBC}",
         "-p", "linear-oauth-cli", "-p", "linear-oauth-node", "-p", "linear-oauth-python"],
        cwd=ROOT, env=env,
    )
    return target_dir() / triple / PROFILE


def pack_cli(out_dir: Path, built: Path, triple: str, version: str) -> Path:
    name = f"linear-oauth-{version}-{triple}"
    tarball = out_dir / f"{name}.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for src, arc, mode in [
            (built / "linear-oauth", "linear-oauth", 0o755),
            (ROOT / "README.md", "README.md", 0o644),
            (ROOT / "LICENSE-MIT", "LICENSE-MIT", 0o644),
            (ROOT / "LICENSE-APACHE", "LICENSE-APACHE", 0o644),
        ]:
            info = tar.gettarinfo(str(src), f"{name}/{arc}")
            info.mode, info.uid, info.gid, info.uname, info.gname = mode, 0, 0, "root", "root"
            with open(src, "rb") as f:
                tar.addfile(info, f)
    return tarball


def record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def pack_wheel(out_dir: Path, built: Path, plat_tag: str, version: str) -> Path:
    """An abi3 wheel: the pure-Python package plus the extension (PEP 427)."""
    project = tomllib.loads((ROOT / "hosts/python/pyproject.toml").read_text())["project"]
    dist_name = project["name"].replace("-", "_")
    tag = f"cp311-abi3-{plat_tag}"
    wheel = out_dir / f"{dist_name}-{version}-{tag}.whl"
    files: list[tuple[str, bytes]] = []
    pkg = ROOT / "hosts/python/python/linear_oauth"
    for path in sorted(pkg.iterdir()):
        if path.is_file() and path.suffix in {".py", ".pyi", ".typed"}:
            files.append((f"linear_oauth/{path.name}", path.read_bytes()))
    files.append(("linear_oauth/_native.abi3.so", (built / "lib_native.so").read_bytes()))
    info = f"{dist_name}-{version}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project['description']}",
        f"Requires-Python: {project['requires-python']}",
        f"License: {project['license']['text']}",
        *[f"Classifier: {c}" for c in project.get("classifiers", [])],
        *[f"Provides-Extra: {extra}" for extra in project.get("optional-dependencies", {})],
        "Description-Content-Type: text/markdown",
        "",
        (ROOT / "hosts/python/README.md").read_text(),
    ]
    wheel_meta = ["Wheel-Version: 1.0", "Generator: linear-oauth scripts/dist.py", "Root-Is-Purelib: false", f"Tag: {tag}", ""]
    files += [
        (f"{info}/METADATA", "\n".join(metadata).encode()),
        (f"{info}/WHEEL", "\n".join(wheel_meta).encode()),
        (f"{info}/licenses/LICENSE-MIT", (ROOT / "LICENSE-MIT").read_bytes()),
        (f"{info}/licenses/LICENSE-APACHE", (ROOT / "LICENSE-APACHE").read_bytes()),
    ]
    record = [record_line(a, d) for a, d in files] + [f"{info}/RECORD,,"]
    files.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for arcname, data in files:
            zi = zipfile.ZipInfo(arcname, date_time=(2026, 1, 1, 0, 0, 0))
            zi.external_attr = (0o755 if arcname.endswith(".so") else 0o644) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return wheel


def npm_pack(staging: Path, out_dir: Path) -> Path:
    out = subprocess.run(["npm", "pack", "--pack-destination", str(out_dir)], cwd=staging, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return out_dir / out


def pack_node_platform(out_dir: Path, built: Path, triple: str, version: str) -> Path:
    plat = TARGETS[triple][0]
    src = ROOT / "hosts/node/npm" / plat
    staging = out_dir / "npm" / plat
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pkg = json.loads((src / "package.json").read_text())
    pkg["version"] = version
    (staging / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    shutil.copy(src / "README.md", staging / "README.md")
    for lic in ["LICENSE-MIT", "LICENSE-APACHE"]:
        shutil.copy(ROOT / lic, staging / lic)
    shutil.copy(built / "liblinear_oauth_node.so", staging / pkg["main"])
    return npm_pack(staging, out_dir)


def pack_node_main(out_dir: Path, version: str, triples: list[str]) -> Path:
    src = ROOT / "hosts/node"
    staging = out_dir / "npm" / "linear-oauth"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pkg = json.loads((src / "package.json").read_text())
    pkg["version"] = version
    pkg["optionalDependencies"] = {f"linear-oauth-{TARGETS[t][0]}": version for t in sorted(TARGETS)}
    for key in ["scripts", "devDependencies"]:
        pkg.pop(key, None)
    (staging / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    for name in pkg["files"] + ["LICENSE-MIT", "LICENSE-APACHE"]:
        source = ROOT / name if name.startswith("LICENSE") else src / name
        shutil.copy(source, staging / name)
    return npm_pack(staging, out_dir)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", action="append", choices=sorted(TARGETS), help="default: both")
    ap.add_argument("--out", default=str(ROOT / "dist"))
    args = ap.parse_args()
    triples = args.target or sorted(TARGETS)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    version = workspace_version()
    made = []
    for triple in triples:
        run(["rustup", "target", "add", triple, "wasm32-wasip2"])
        built = build(triple)
        made.append(pack_cli(out_dir, built, triple, version))
        made.append(pack_wheel(out_dir, built, TARGETS[triple][2], version))
        made.append(pack_node_platform(out_dir, built, triple, version))
    made.append(pack_node_main(out_dir, version, triples))
    print(f"\nlinear-oauth {version}: {out_dir}")
    for path in made:
        print(f"  {path.stat().st_size / 1e6:8.2f} MB  {path.name}")
    for triple in triples:
        built = target_dir() / triple / PROFILE
        for name in ["linear-oauth", "liblinear_oauth_node.so", "lib_native.so"]:
            print(f"  {(built / name).stat().st_size / 1e6:8.2f} MB  {triple}/{name} (stripped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
