#!/usr/bin/env python3
"""`make dist-check`: the artifacts in dist/ work where they will run.

Against the local Linear-compatible test server (loopback only):
1. wheels: `auditwheel show` confirms the manylinux tag; a fresh venv with no
   cargo or rustc on PATH installs the x86_64 wheel and resolves a token;
2. Node: a scratch Lambda project installs the npm tarballs, bundles a
   TypeScript handler the way CDK's NodejsFunction does with
   `nodeModules: ['linear-oauth']`, copies the bundle elsewhere and invokes it;
3. arm64 under qemu-aarch64: the aarch64 CLI runs `smoke`, and `doctor`
   reports a precompiled load;
4. musl: the static musl CLI runs here (aarch64 under qemu) `smoke`,
   `doctor` and `token`; the musl wheels and addons are checked without a
   musl Python or Node (this machine has neither): `auditwheel show`, the
   npm metadata, ELF NEEDED entries, no glibc symbol versions, and musl's own
   dynamic loader (Debian's `musl` package) resolving every symbol that is
   not the interpreter's; what cannot run is listed under NOT RUN;
5. `twine check` and the core metadata of every wheel;
6. sizes against the targets, and cold starts of each artifact as a whole
   process, each paired in the same run with the bare runtime.
Exits non-zero on the first failed check.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = Path(os.environ.get("DIST_DIR") or ROOT / "dist")
VERSION = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
CLIENT_ID, CLIENT_SECRET = "dist-check-client", "dist-check-secret"
RUNS = int(os.environ.get("DIST_CHECK_RUNS", "21"))
# Plain system paths only: nothing from ~/.cargo or the build venv.
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"
ESBUILD = "esbuild@0.28.2"
SIZE_TARGETS_MB = {"cli": 15.0, "node": 15.0, "wheel": 8.0}

results: list[tuple[str, str]] = []
not_run: list[str] = []


def step(name: str, detail: str) -> None:
    results.append((name, detail))
    print(f"ok    {name:<44} {detail}", flush=True)


def fail(msg: str) -> None:
    print(f"FAIL  {msg}", flush=True)
    sys.exit(1)


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    try:
        return subprocess.run(cmd, **kw)
    except subprocess.CalledProcessError as e:
        fail(f"{' '.join(map(str, cmd))} exited {e.returncode}\n{e.stdout}\n{e.stderr}")
        raise


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """linear-oauth-testserver as a child process."""

    def __init__(self, redirect_uri: str) -> None:
        binary = os.environ.get("LINEAR_OAUTH_TESTSERVER") or str(ROOT / "target/debug/linear-oauth-testserver")
        self.proc = subprocess.Popen(
            [binary, "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--redirect-uri", redirect_uri],
            stdout=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not m:
            fail(f"test server did not start: {line!r}")
        self.base = m.group(0)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def extract_cli(triple: str, into: Path) -> Path:
    tarball = DIST / f"linear-oauth-{VERSION}-{triple}.tar.gz"
    with tarfile.open(tarball) as tar:
        tar.extractall(into, filter="data")
    folder = into / f"linear-oauth-{VERSION}-{triple}"
    for name in ["README.md", "LICENSE-MIT", "LICENSE-APACHE", "linear-oauth", "completions/linear-oauth.bash",
                 "completions/_linear-oauth", "completions/linear-oauth.fish", "man/man1/linear-oauth.1",
                 "man/man1/linear-oauth-status.1"]:
        if not (folder / name).is_file():
            fail(f"{tarball.name} lacks {name}")
    return folder / "linear-oauth"


def install_workspace(cli: Path, server: Server, store: str, redirect_uri: str) -> str:
    """`linear-oauth setup --no-browser`, this script playing the browser."""
    env = dict(os.environ, LINEAR_OAUTH_CLIENT_SECRET=CLIENT_SECRET, PATH=BARE_PATH)
    proc = subprocess.Popen(
        [str(cli), "--store", store, "--api-base", server.base, "--authorize-url", f"{server.base}/oauth/authorize",
         "--json", "setup", "--client-id", CLIENT_ID, "--redirect-uri", redirect_uri, "--no-browser", "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    url = None
    for line in proc.stderr:
        if line.startswith("http"):
            url = line.strip()
            break
    if not url:
        proc.kill()
        fail("setup printed no authorization URL")
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:  # follows the redirect to the CLI's listener
                resp.read()
            break
        except OSError:
            time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    if proc.returncode != 0:
        fail(f"setup exited {proc.returncode}: {err}")
    return json.loads(out)["workspace_id"]


def check_wheels(arches: list[str]) -> Path:
    wheels = {}
    for arch in arches:
        found = sorted(DIST.glob(f"linear_oauth-{VERSION}-cp311-abi3-manylinux*_{arch}.whl"))
        if not found:
            fail(f"no {arch} wheel in {DIST}")
        wheels[arch] = found[-1]
        shown = sh([sys.executable, "-m", "auditwheel", "show", str(found[-1])]).stdout
        if "manylinux_2_17" not in shown:
            fail(f"auditwheel does not place {found[-1].name} on manylinux_2_17:\n{shown}")
        step(f"auditwheel {arch}", "consistent with manylinux_2_17 (manylinux2014)")
    return wheels["x86_64"]


def check_wheel_metadata(wheels: list[Path]) -> None:
    """`twine check`, and what it does not look at: core metadata 2.4 with
    each License-File present, and a Requires-Dist for every extra."""
    out = sh([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels)]).stdout
    if out.count("PASSED") != len(wheels):
        fail(f"twine check:\n{out}")
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            info = next(n.split("/")[0] for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            head = z.read(f"{info}/METADATA").decode().split("\n\n", 1)[0].splitlines()
            names = set(z.namelist())
        fields: dict[str, list[str]] = {}
        for line in head:
            key, _, value = line.partition(": ")
            fields.setdefault(key, []).append(value)
        if fields.get("Metadata-Version") != ["2.4"] or "License-Expression" not in fields or "License" in fields:
            fail(f"{wheel.name}: METADATA header {head[:6]}")
        for lic in fields.get("License-File", []) or fail(f"{wheel.name}: no License-File"):
            if f"{info}/licenses/{lic}" not in names:
                fail(f"{wheel.name}: License-File {lic} is not in {info}/licenses/")
        for extra in fields.get("Provides-Extra", []):
            if not any(r.endswith(f'extra == "{extra}"') for r in fields.get("Requires-Dist", [])):
                fail(f"{wheel.name}: the extra {extra} requires nothing")
    step("twine check --strict, core metadata", f"{len(wheels)} wheels: Metadata-Version 2.4, "
         f"License-File {', '.join(fields['License-File'])}, extras {', '.join(fields.get('Provides-Extra', []))}")


def check_python(wheel: Path, work: Path, server: Server, store: str, workspace: str) -> Path:
    venv = work / "venv"
    sh(["/usr/bin/env", f"PATH={BARE_PATH}", sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin/python"
    env = dict(os.environ, PATH=f"{venv / 'bin'}:{BARE_PATH}")
    for tool in ["cargo", "rustc"]:
        if shutil.which(tool, path=env["PATH"]):
            fail(f"{tool} is on the clean PATH; the wheel check must run without Rust")
    sh([str(py), "-m", "pip", "install", "--quiet", "--no-index", str(wheel)], env=env)
    code = (
        "import linear_oauth as lo\n"
        f"r = lo.Resolver(store={store!r}, api_base={server.base!r})\n"
        f"t = r.resolve({workspace!r})\n"
        "info = lo.load_info()\n"
        "assert t.access_token and t.workspace_slug, t\n"
        "assert info.compiled_fallback is False, info\n"
        "print(t.workspace_slug, info)\n"
    )
    out = sh([str(py), "-c", code], env=env, cwd=work).stdout.strip()
    step("wheel in a venv without Rust", out)
    return py


HANDLER_TS = """\
import { Resolver } from 'linear-oauth';

const resolver = Resolver.fromEnv();

export const handler = async (event: { workspaceId: string }) => {
  const token = await resolver.resolve(event.workspaceId);
  return { slug: token.workspaceSlug, hasToken: token.accessToken.length > 0, expiresAt: token.expiresAt };
};
"""


def check_node(work: Path, server: Server, store: str, workspace: str) -> Path:
    main = DIST / f"linear-oauth-{VERSION}.tgz"
    plat = DIST / f"linear-oauth-linux-x64-gnu-{VERSION}.tgz"
    for t in [main, plat]:
        if not t.is_file():
            fail(f"missing {t}")
    project = work / "lambda-src"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "handler", "version": "1.0.0", "private": True}))
    (project / "handler.ts").write_text(HANDLER_TS)
    # --offline: the platform package comes from dist/, never from a registry;
    # the arm64 optional dependency is skipped on this machine.
    sh(["npm", "install", "--offline", "--no-audit", "--no-fund", str(main), str(plat)], cwd=project)
    sh(["npm", "install", "--no-audit", "--no-fund", "--no-save", ESBUILD], cwd=project)
    # What CDK's NodejsFunction runs with nodeModules: ['linear-oauth'].
    sh(["npx", "esbuild", "handler.ts", "--bundle", "--platform=node", "--format=cjs", "--target=node22",
        "--external:linear-oauth", "--outfile=out/index.js"], cwd=project)
    asset = work / "lambda-asset"
    asset.mkdir()
    shutil.copy(project / "out/index.js", asset / "index.js")
    (asset / "package.json").write_text(json.dumps({"name": "asset", "version": "1.0.0", "private": True}))
    sh(["npm", "install", "--offline", "--no-audit", "--no-fund", str(main), str(plat)], cwd=asset)
    env = dict(os.environ, LINEAR_OAUTH_STORE=store, LINEAR_OAUTH_API_BASE=server.base, PATH=BARE_PATH)
    out = sh(["node", "-e", f"require('./index.js').handler({{workspaceId: {workspace!r}}})"
              ".then(r => { if (!r.hasToken) process.exit(3); console.log(JSON.stringify(r)); })"
              ".catch(e => { console.error(e); process.exit(2); })"], cwd=asset, env=env).stdout.strip()
    loaded = sh(["node", "-e", "console.log(JSON.stringify(require('linear-oauth').loadInfo()))"], cwd=asset, env=env).stdout
    if json.loads(loaded)["compiledFallback"] is not False:
        fail(f"the addon compiled the component at load: {loaded}")
    step("bundled Lambda handler (esbuild, external)", out)
    return asset


def qemu_path() -> str:
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if not qemu:
        fail("qemu-aarch64 is needed: apt-get install qemu-user libc6-arm64-cross")
    return qemu


def check_arm64(work: Path) -> None:
    qemu = qemu_path()
    sysroot = Path("/usr/aarch64-linux-gnu")
    if not (sysroot / "lib").is_dir():
        fail("the arm64 sysroot is needed: apt-get install libc6-arm64-cross")
    cli = extract_cli("aarch64-unknown-linux-gnu", work / "arm64")
    arch = sh(["file", "-b", str(cli)], check=False).stdout if shutil.which("file") else "aarch64"
    run = [qemu, "-L", str(sysroot), str(cli)]
    started = time.perf_counter()
    smoke = sh(run + ["smoke"], timeout=900)
    step("arm64 CLI smoke under qemu", f"{time.perf_counter() - started:.1f} s; {smoke.stdout.strip().splitlines()[-1]}")
    port = free_port()
    server = Server(f"http://127.0.0.1:{port}/oauth/callback")
    try:
        doc = sh(run + ["--store", f"file:{work / 'arm64-store'}", "--api-base", server.base, "--json", "doctor"], check=False)
    finally:
        server.stop()
    report = json.loads(doc.stdout)
    if report["component"]["load"] != "precompiled":
        fail(f"arm64 doctor: component {report['component']}")
    step("arm64 doctor", f"component {report['component']['load']} in {report['component']['load_ms']} ms "
         f"(baseline [{report['component']['cpu_baseline']}]); exit {doc.returncode}; {', '.join(arch.split(', ')[:2])}")


# Debian's arm64 Python 3.11 and Node.js with what they load, unpacked into a
# folder that qemu-aarch64 uses as the root (-L); `make dist-check` adds the
# arm64 architecture to apt so that `apt-get download` finds them.
ARM64_DEBS = [
    "libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libexpat1", "libffi8", "libssl3", "libbz2-1.0", "liblzma5",
    "libsqlite3-0", "libcrypt1", "libuuid1", "libtirpc3", "libnsl2", "libncursesw6", "libtinfo6", "libdb5.3",
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib",
    "nodejs", "libnode108", "libuv1", "libbrotli1", "libc-ares2", "libicu72", "libnghttp2-14",
]
ARM64_DEBS_ALL = ["node-cjs-module-lexer", "node-acorn", "node-undici", "node-busboy"]


def arm64_root() -> Path:
    root = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "arm64-root"
    if (root / "usr/bin/node").is_file() and (root / "usr/bin/python3.11").is_file():
        return root
    debs = root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    sh(["apt-get", "download", *[f"{d}:arm64" for d in ARM64_DEBS], *ARM64_DEBS_ALL], cwd=debs)
    for deb in sorted(debs.glob("*.deb")):
        sh(["dpkg-deb", "-x", str(deb), str(root)])
    return root


def check_arm64_runtimes(work: Path, qemu: str, wheel: Path, server: Server, store: str, workspace: str) -> None:
    """The arm64 wheel in Debian's arm64 Python and the arm64 addon in its Node, under qemu."""
    root = arm64_root()
    site = work / "arm64-site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    code = (
        "import linear_oauth as lo\n"
        f"t = lo.Resolver(store={store!r}, api_base={server.base!r}).resolve({workspace!r})\n"
        "assert t.access_token and lo.load_info().compiled_fallback is False\n"
        "import platform; print(platform.machine(), t.workspace_slug, lo.load_info())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(site), PATH=BARE_PATH)
    out = sh([qemu, "-L", str(root), str(root / "usr/bin/python3.11"), "-c", code], env=env, cwd=work, timeout=600).stdout.strip()
    step("arm64 wheel in arm64 Python under qemu", out)
    modules = work / "arm64-node/node_modules"
    for name, tgz in [("linear-oauth", f"linear-oauth-{VERSION}.tgz"), ("linear-oauth-linux-arm64-gnu", f"linear-oauth-linux-arm64-gnu-{VERSION}.tgz")]:
        with tarfile.open(DIST / tgz) as tar:
            tar.extractall(modules / f".{name}", filter="data")
        (modules / f".{name}/package").rename(modules / name)
    js = (
        "const lo = require('linear-oauth');"
        f"lo.Resolver.fromEnv().resolve({workspace!r}).then(t => {{"
        "  if (!t.accessToken || lo.loadInfo().compiledFallback !== false) process.exit(3);"
        "  console.log(process.arch, process.version, t.workspaceSlug, JSON.stringify(lo.loadInfo()));"
        "}, e => { console.error(e); process.exit(2); })"
    )
    env = dict(os.environ, LINEAR_OAUTH_STORE=store, LINEAR_OAUTH_API_BASE=server.base, PATH=BARE_PATH)
    out = sh([qemu, "-L", str(root), str(root / "usr/bin/node"), "-e", js], env=env, cwd=modules.parent, timeout=600).stdout.strip()
    step("arm64 addon in arm64 Node under qemu", out)


MUSL_ARCH = {"x86_64-unknown-linux-musl": ("x86_64", "x64"), "aarch64-unknown-linux-musl": ("aarch64", "arm64")}


def musl_loader(arch: str) -> list[str] | None:
    """musl's dynamic loader of `arch` as a command that runs here: Debian's
    `musl` package for x86_64 (`make dist-check` installs it), its arm64 build
    unpacked under the arm64 root and run by qemu for aarch64."""
    if arch == "x86_64":
        ld = Path("/lib/ld-musl-x86_64.so.1")
        return [str(ld)] if ld.exists() else None
    root = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "arm64-musl-root"
    ld = root / "lib/ld-musl-aarch64.so.1"
    if not ld.exists():
        debs = root / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        if subprocess.run(["apt-get", "download", "musl:arm64"], cwd=debs, capture_output=True).returncode != 0:
            return None
        for deb in debs.glob("*.deb"):
            sh(["dpkg-deb", "-x", str(deb), str(root)])
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    return [qemu, str(ld)] if qemu and ld.exists() else None


def check_musl_elf(label: str, lib: Path, arch: str, host_symbols: str | None) -> None:
    """A musl shared object, checked without the interpreter that would load
    it: it needs only musl's libc (no glibc loader, no glibc symbol versions),
    and musl's loader resolves every symbol except the interpreter's own
    (`host_symbols`, a regex: Py* from CPython; None when there are none:
    napi-rs looks Node's napi_* functions up at run time)."""
    dyn = sh(["readelf", "-d", "-W", str(lib)]).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", dyn)
    if needed != [f"libc.musl-{arch}.so.1"]:
        fail(f"{label}: NEEDED {needed}, expected musl's libc alone, as Alpine names it (libc.musl-{arch}.so.1)")
    versions = sh(["readelf", "-V", "-W", str(lib)]).stdout
    if "GLIBC_" in versions or "ld-linux" in dyn:
        fail(f"{label}: refers to glibc:\n{versions}")
    loader = musl_loader(arch)
    if loader is None:
        not_run.append(f"{label}: musl's {arch} loader is not available (apt-get install musl / apt-get download musl:arm64)")
        step(f"{label} ELF", f"NEEDED {', '.join(needed)}; no GLIBC_ versions")
        return
    undefined = len(sh(["nm", "-D", "--undefined-only", str(lib)]).stdout.splitlines())
    listed = subprocess.run([*loader, "--list", str(lib)], capture_output=True, text=True, timeout=300)
    missing = sorted(set(re.findall(r"Error relocating [^:]+: ([^:]+): symbol not found", listed.stdout + listed.stderr)))
    others = [m for m in missing if not (host_symbols and re.match(host_symbols, m))]
    if others or (host_symbols and not missing) or f"libc.musl-{arch}.so.1 => " not in listed.stdout:
        fail(f"{label}: musl's loader leaves {others or 'no interpreter symbol (unexpected)'} unresolved:\n"
             f"{listed.stdout}{listed.stderr}")
    left = f"{len(missing)} left to the interpreter ({missing[0]}, ...)" if missing else "none left unresolved"
    step(f"{label} in musl's loader", f"NEEDED {', '.join(needed)} (musl maps it to itself); no GLIBC_ "
         f"versions; {undefined} undefined symbols: {undefined - len(missing)} resolve in musl {arch}, {left}")


def check_musl(triples: list[str], work: Path, server: Server, store: str, workspace: str) -> None:
    """The musl artifacts of each triple (see the module docstring, 4)."""
    main_pkg = DIST / f"linear-oauth-{VERSION}.tgz"
    with tarfile.open(main_pkg) as tar:
        optional = json.load(tar.extractfile("package/package.json")).get("optionalDependencies", {})
    for triple in triples:
        arch, cpu = MUSL_ARCH[triple]
        here = arch == os.uname().machine
        # The CLI: static, so it runs without any musl on the machine.
        cli = extract_cli(triple, work / triple)
        described = sh(["file", "-b", str(cli)]).stdout
        if "statically linked" not in described or "INTERP" in sh(["readelf", "-l", "-W", str(cli)]).stdout:
            fail(f"{triple} CLI is not a static executable: {described}")
        run = [str(cli)] if here else [qemu_path(), str(cli)]
        started = time.perf_counter()
        smoke = sh(run + ["smoke"], timeout=900)
        step(f"{arch} musl CLI smoke{'' if here else ' under qemu'}",
             f"{time.perf_counter() - started:.1f} s; {', '.join(described.split(', ')[:2])}, statically linked; "
             f"{smoke.stdout.strip().splitlines()[-1]}")
        env = dict(os.environ, PATH=BARE_PATH)
        doc = sh(run + ["--store", store, "--api-base", server.base, "--json", "doctor"], check=False, env=env)
        report = json.loads(doc.stdout)
        if report["component"]["load"] != "precompiled":
            fail(f"{triple} doctor: component {report['component']}")
        token = sh(run + ["--store", store, "--api-base", server.base, "token", "--workspace", workspace], env=env)
        if not token.stdout.strip():
            fail(f"{triple} `token` printed nothing")
        step(f"{arch} musl CLI doctor, token", f"component {report['component']['load']} in "
             f"{report['component']['load_ms']} ms; doctor exit {doc.returncode}; token for {workspace} resolved "
             "from the store the glibc CLI set up")
        # The wheel.
        wheel = DIST / f"linear_oauth-{VERSION}-cp311-abi3-musllinux_1_2_{arch}.whl"
        if not wheel.is_file():
            fail(f"missing {wheel.name}")
        shown = sh([sys.executable, "-m", "auditwheel", "show", str(wheel)]).stdout
        if "musllinux_1_2" not in shown:
            fail(f"auditwheel does not place {wheel.name} on musllinux_1_2:\n{shown}")
        step(f"auditwheel {arch} musl", "consistent with musllinux_1_2")
        with zipfile.ZipFile(wheel) as z:
            z.extract("linear_oauth/_native.abi3.so", work / f"{triple}-wheel")
        check_musl_elf(f"{arch} musl wheel's extension", work / f"{triple}-wheel/linear_oauth/_native.abi3.so",
                       arch, r"^(Py|_Py)")
        not_run.append(f"{arch} musl wheel: not imported (no musl CPython here; glibc's Python cannot load a musl extension)")
        # The npm package.
        plat = f"linux-{cpu}-musl"
        tgz = DIST / f"linear-oauth-{plat}-{VERSION}.tgz"
        with tarfile.open(tgz) as tar:
            meta = json.load(tar.extractfile("package/package.json"))
            addon = work / f"{triple}-npm"
            tar.extract(f"package/{meta['main']}", addon, filter="data")
        want = {"name": f"linear-oauth-{plat}", "version": VERSION, "os": ["linux"], "cpu": [cpu], "libc": ["musl"],
                "main": f"linear-oauth.{plat}.node"}
        got = {k: meta.get(k) for k in want}
        if got != want or optional.get(want["name"]) != VERSION:
            fail(f"{tgz.name}: {got} (want {want}); linear-oauth's optionalDependencies: {optional}")
        step(f"npm {want['name']} metadata", f"os linux, cpu {cpu}, libc musl, {meta['main']}; "
             "an optional dependency of linear-oauth")
        # npm's own choice among the real tarballs, as on a musl machine of this cpu.
        project = work / f"{triple}-npm-install"
        project.mkdir()
        overrides = {t.name[: -len(f"-{VERSION}.tgz")]: f"file:{t}" for t in DIST.glob(f"linear-oauth-linux-*-{VERSION}.tgz")}
        (project / "package.json").write_text(json.dumps(
            {"private": True, "dependencies": {"linear-oauth": f"file:{main_pkg}"}, "overrides": overrides}))
        sh(["npm", "install", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", "--os=linux", f"--cpu={cpu}",
            "--libc=musl"], cwd=project)
        picked = sorted(d.name for d in (project / "node_modules").iterdir() if d.name.startswith("linear-oauth-"))
        if picked != [want["name"]]:
            fail(f"npm install --cpu={cpu} --libc=musl installed {picked}, not {want['name']}")
        step(f"npm picks {want['name']}", f"npm install --os=linux --cpu={cpu} --libc=musl, offline, "
             f"{len(overrides)} platform tarballs offered")
        check_musl_elf(f"{arch} musl Node addon", addon / "package" / meta["main"], arch, None)
        not_run.append(f"{arch} musl Node addon: not required (no musl Node here; glibc's Node cannot load a musl addon)")


def median_pair(a: list[str], b: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Alternates A and B RUNS times each; medians in ms."""
    ta, tb = [], []
    for _ in range(RUNS):
        for cmd, acc in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
            acc.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ta), statistics.median(tb)


def cold_starts(py: Path, asset: Path, cli: Path, store: str, server: Server, workspace: str) -> list[tuple[str, float, float, float]]:
    env = dict(os.environ, LINEAR_OAUTH_STORE=store, LINEAR_OAUTH_API_BASE=server.base, PATH=BARE_PATH)
    rows = []
    node_a = ["node", "-e", "const lo = require('linear-oauth'); lo.Resolver.fromEnv()"]
    rows.append(("node: require + Resolver.fromEnv()", *median_pair(node_a, ["node", "-e", "0"], asset, env), 15.0))
    py_a = [str(py), "-c", "import linear_oauth as lo; lo.Resolver.from_env()"]
    rows.append(("python: import + Resolver.from_env()", *median_pair(py_a, [str(py), "-c", "0"], asset, env), 20.0))
    cli_a = [str(cli), "token", "--workspace", workspace]
    rows.append(("cli: token (cached fresh token)", *median_pair(cli_a, ["true"], asset, env), 10.0))
    return rows


def sizes() -> list[tuple[str, float, float]]:
    rows = []
    members = [  # (label, tarball, member inside it, target)
        *[(f"cli {t} (stripped)", f"linear-oauth-{VERSION}-{t}.tar.gz", f"linear-oauth-{VERSION}-{t}/linear-oauth", "cli")
          for t in ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", *MUSL_ARCH]],
        *[(f"node addon {p}", f"linear-oauth-{p}-{VERSION}.tgz", f"package/linear-oauth.{p}.node", "node")
          for p in ["linux-x64-gnu", "linux-arm64-gnu", "linux-x64-musl", "linux-arm64-musl"]],
    ]
    for label, tarball, member, kind in members:
        if (DIST / tarball).is_file():
            with tarfile.open(DIST / tarball) as tar:
                rows.append((label, tar.getmember(member).size / 2**20, SIZE_TARGETS_MB[kind]))
    for wheel in sorted(DIST.glob(f"linear_oauth-{VERSION}-*.whl")):
        rows.append((f"wheel {wheel.name.removesuffix('.whl').split('-')[-1].split('.')[-1]}", wheel.stat().st_size / 2**20, SIZE_TARGETS_MB["wheel"]))
    return rows


def main() -> int:
    # --x86_64-only: for iterating on this script while the arm64 build runs
    # (x86_64 glibc and musl only).
    x86_only = "--x86_64-only" in sys.argv[1:]
    musl = ["x86_64-unknown-linux-musl"] if x86_only else list(MUSL_ARCH)
    if not DIST.is_dir():
        fail(f"{DIST} does not exist; run `make dist` first")
    with tempfile.TemporaryDirectory(prefix="linear-oauth-dist-check-") as tmp:
        work = Path(tmp)
        wheel = check_wheels(["x86_64"] if x86_only else ["x86_64", "aarch64"])
        check_wheel_metadata(sorted(DIST.glob(f"linear_oauth-{VERSION}-*.whl")))
        cli = extract_cli("x86_64-unknown-linux-gnu", work / "x64")
        port = free_port()
        redirect = f"http://127.0.0.1:{port}/oauth/callback"
        server = Server(redirect)
        try:
            store = f"file:{work / 'store'}"
            workspace = install_workspace(cli, server, store, redirect)
            step("x86_64 CLI setup (script plays the browser)", f"workspace {workspace}")
            py = check_python(wheel, work, server, store, workspace)
            asset = check_node(work, server, store, workspace)
            check_musl(musl, work, server, store, workspace)
            if not x86_only:
                arm_wheel = sorted(DIST.glob(f"linear_oauth-{VERSION}-cp311-abi3-manylinux*_aarch64.whl"))[-1]
                check_arm64_runtimes(work, qemu_path(), arm_wheel, server, store, workspace)
            starts = cold_starts(py, asset, cli, store, server, workspace)
        finally:
            server.stop()
        if not x86_only:
            check_arm64(work)

    print(f"\nsizes (MiB; target in brackets)")
    for name, mib, target in sizes():
        print(f"  {name:<44} {mib:7.2f}  [<= {target:.0f}]{'' if mib <= target else '  OVER'}")
    print(f"\ncold start, median of {RUNS} paired runs (ms)")
    print(f"  {'':<36} {'artifact':>9} {'bare':>8} {'delta':>8}  goal")
    for name, a, b, goal in starts:
        print(f"  {name:<36} {a:9.1f} {b:8.1f} {a - b:+8.1f}  <= +{goal:.0f}")
    print(f"\n{len(results)} checks passed")
    if x86_only:
        not_run.append("aarch64 (glibc and musl): --x86_64-only")
    if not_run:
        print("\nNOT RUN (this machine cannot):")
        for line in not_run:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
