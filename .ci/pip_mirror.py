"""Pip inside `docker build`, configured as pip on this machine is.

Reads the host's pip configuration (`pip config list`, then PIP_* variables, which win), serves every
local directory it names (find-links, file:// indexes, a constraints file) over HTTP on 127.0.0.1, and
writes the `docker build` arguments that give the build the same configuration: PIP_* build arguments
whose local locations are replaced by this server's URLs, and the CA bundle as a BuildKit secret (so it
is never in a layer). The build runs with `--network host` to reach the server. Remote URLs are passed
as they are; one with a password in it is refused, since build arguments show in `docker history`.

Usage: python3 .ci/pip_mirror.py ARGS_FILE   (serves until terminated; ARGS_FILE appears when ready)
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

KEYS = ("index-url", "extra-index-url", "find-links", "trusted-host", "constraint", "cert")


def host_pip_config() -> dict[str, str]:
    """Each key's value as pip here would use it: the config files' (last one wins), then PIP_*."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            check=True).stdout
    values: dict[str, str] = {}
    for line in listed.splitlines():
        name, sep, value = line.partition("=")
        section, _, key = name.partition(".")
        if sep and key in KEYS and section in ("global", "install"):
            values[key] = value.strip().strip("'\"")
    for key in KEYS:
        env = os.environ.get("PIP_" + key.upper().replace("-", "_"), "").strip()
        if env:
            values[key] = env
    return values


PORT = 55480  # fixed, so that the build arguments and with them Docker's layer cache stay the same


class Mirror:
    """Local directories under /0/, /1/, ... of one HTTP server on 127.0.0.1."""

    def __init__(self, port: int = PORT):
        self.roots: list[Path] = []
        handler = functools.partial(_Handler, self.roots)
        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError:  # taken: any port works, the build just cannot reuse its cached pip layer
            print(f"pip_mirror: 127.0.0.1:{port} is taken; serving on another port", file=sys.stderr)
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, location: str, index: bool = False) -> str:
        """The URL the build uses for a pip location (a path, a file:// URL or a remote URL). An index
        is served from its parent directory: its pages link to files beside it (../../files/...)."""
        parsed = urlparse(location)
        if parsed.scheme not in ("", "file"):
            if parsed.password:
                raise SystemExit(f"pip_mirror: {parsed.scheme}://{parsed.hostname}... has a password; build "
                                 f"arguments are visible in the image's history, pass it as a BuildKit secret")
            return location
        path = Path(unquote(parsed.path) if parsed.scheme == "file" else location).resolve()
        if index:
            root, name = path.parent, path.name + "/"
        else:
            root, name = (path, "") if path.is_dir() else (path.parent, path.name)
        if root not in self.roots:
            self.roots.append(root)
        return f"{self.base}/{self.roots.index(root)}/{name}"


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, roots, *args, **kwargs):
        self.roots = roots
        super().__init__(*args, directory="/nonexistent", **kwargs)

    def translate_path(self, path: str) -> str:
        head, _, rest = urlparse(path).path.lstrip("/").partition("/")
        if not head.isdigit() or int(head) >= len(self.roots):
            return "/nonexistent"
        root = self.roots[int(head)]
        target = (root / unquote(rest)).resolve()
        return str(target) if target == root or root in target.parents else "/nonexistent"

    def log_message(self, *args) -> None:  # pip's own output says what it fetched
        pass


def build_args(config: dict[str, str], mirror: Mirror) -> list[str]:
    args: list[str] = []
    index = config.get("index-url", "https://pypi.org/simple")
    lists = {"PIP_INDEX_URL": [index],
             "PIP_EXTRA_INDEX_URL": config.get("extra-index-url", "").split(),
             "PIP_FIND_LINKS": config.get("find-links", "").split(),
             "PIP_CONSTRAINT": config.get("constraint", "").split()}
    for name, locations in lists.items():
        index = name.endswith("INDEX_URL")
        args += ["--build-arg", f"{name}={' '.join(mirror.url(x, index) for x in locations)}"]
    trusted = config.get("trusted-host", "").split()
    if mirror.roots:
        trusted.append("127.0.0.1")
    args += ["--build-arg", f"PIP_TRUSTED_HOST={' '.join(trusted)}"]
    if config.get("cert"):
        args += ["--secret", f"id=pip_cert,src={config['cert']}"]
    return args


def main(out: str) -> None:
    mirror = Mirror(int(os.environ.get("AUTOTRADER_PIP_MIRROR_PORT", PORT)))
    args = build_args(host_pip_config(), mirror)
    threading.Thread(target=mirror.server.serve_forever, daemon=True).start()
    Path(out + ".tmp").write_text("\n".join(args) + "\n")
    os.replace(out + ".tmp", out)
    for line in args:
        print(line, file=sys.stderr)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1])
