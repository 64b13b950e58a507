"""A candidate environment: a second virtualenv that shares this one's packages except the named ones.

`python -m fuzzconv.candidate_env --env .venv-candidate "onnxruntime==1.30.0"` (what
`make env-candidate` runs) creates a virtualenv without pip whose site-packages holds a `.pth`
file adding this environment's site-packages behind its own, then installs only the named
releases into it with `pip install --no-deps --ignore-installed`. Imports find the candidate's
own copy first and everything else (torch, TensorFlow, numpy, ...) in the shared environment,
so trying a release costs one small download and no second copy of the frameworks. Nothing in
the shared environment is touched.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

PTH_NAME = "_fuzzconv_shared_env.pth"
RECORD_NAME = "fuzzconv-candidate.json"


class CandidateEnvError(Exception):
    """The candidate environment could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    location: str


def requirement_name(spec: str) -> str:
    """The distribution name of a pip requirement: 'onnxruntime' of 'onnxruntime==1.30.0'."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    if match is None or spec.strip().startswith("-"):
        raise CandidateEnvError(f"{spec!r} is not a requirement; write NAME==VERSION, e.g. onnxruntime==1.30.0")
    return match.group(1)


def shared_site_dirs() -> list[str]:
    """This interpreter's site-packages folders (purelib and platlib), the ones a candidate shares."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def env_python(env: Path) -> Path:
    return env / "bin" / "python"


def _run(command: list[str], what: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise CandidateEnvError(f"{what} failed (exit code {done.returncode}):\n{tail}")
    return done.stdout


def _candidate_site_dir(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(_run([str(python), "-c", code], "asking the new environment for its site-packages").strip())


def create_venv(env: Path) -> Path:
    """A pip-less virtualenv at `env` whose imports fall back on this environment's packages."""
    if env.exists() and not env_python(env).exists():
        raise CandidateEnvError(f"{env} exists and is not a virtualenv; choose another folder or remove it")
    if env.resolve() == Path(sys.prefix).resolve():
        raise CandidateEnvError(f"{env} is the environment being shared; choose another folder")
    if not env_python(env).exists():
        _run([sys.executable, "-m", "venv", "--without-pip", str(env)], f"python -m venv {env}")
    site_dir = _candidate_site_dir(env_python(env))
    lines = [f"import site; site.addsitedir({shared!r})" for shared in shared_site_dirs()]
    (site_dir / PTH_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return site_dir


def install(env: Path, specs: list[str]) -> None:
    """Install exactly these releases into the candidate, nothing they depend on."""
    command = [str(env_python(env)), "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-installed", *specs]
    _run(command, "pip install " + " ".join(specs))


def installed(python: Path, names: list[str]) -> list[Installed]:
    """Version and location of each distribution as the given interpreter resolves it."""
    code = (
        "import json, sys\nfrom importlib import metadata\nout = []\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n        dist = metadata.distribution(name)\n"
        "        out.append([name, dist.version, str(dist.locate_file(''))])\n"
        "    except metadata.PackageNotFoundError:\n        out.append([name, '', ''])\n"
        "print(json.dumps(out))\n"
    )
    rows = json.loads(_run([str(python), "-c", code, *names], "reading installed versions"))
    return [Installed(*row) for row in rows]


def verify(env: Path, site_dir: Path, specs: list[str]) -> list[Installed]:
    """Each named package must resolve to the candidate's own copy, at the pinned version if one was given."""
    found = installed(env_python(env), [requirement_name(spec) for spec in specs])
    for spec, dist in zip(specs, found):
        pinned = re.search(r"==\s*([^\s,;]+)", spec)
        if not dist.location.startswith(str(site_dir)):
            raise CandidateEnvError(f"{dist.name} resolves to {dist.location or 'nothing'}, not to {site_dir}; "
                                    "the install did not land in the candidate environment")
        if pinned and dist.version != pinned.group(1):
            raise CandidateEnvError(f"{dist.name} is {dist.version} in the candidate, not {pinned.group(1)}")
    return found


def make_candidate(env: Path, specs: list[str]) -> list[Installed]:
    """Create (or update) the candidate environment and return what now differs from the shared one."""
    if not specs:
        raise CandidateEnvError("name at least one release to try, e.g. onnxruntime==1.30.0")
    for spec in specs:
        requirement_name(spec)
    site_dir = create_venv(env)
    install(env, specs)
    found = verify(env, site_dir, specs)
    record = {"shares": shared_site_dirs(), "specs": specs, "python": str(env_python(env))}
    (env / RECORD_NAME).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fuzzconv.candidate_env",
        description="Create a virtualenv that shares this one's packages except the named releases.")
    parser.add_argument("specs", nargs="+", metavar="SPEC", help="releases to try, e.g. onnxruntime==1.30.0")
    parser.add_argument("--env", default=".venv-candidate", help="folder of the new environment (default .venv-candidate)")
    args = parser.parse_args(argv)
    env = Path(args.env)
    try:
        found = make_candidate(env, args.specs)
    except CandidateEnvError as exc:
        print(f"candidate_env: error: {exc}", file=sys.stderr)
        return 2
    base = {dist.name: dist.version for dist in installed(Path(sys.executable), [d.name for d in found])}
    for dist in found:
        print(f"{dist.name} {dist.version} (shared environment: {base.get(dist.name) or 'not installed'})")
    print(f"candidate environment ready: {env_python(env)}")
    print(f"try it: fuzzconv recheck --python {env_python(env)} crashes/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
