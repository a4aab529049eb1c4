"""Building the project's images without a registry: a stage image and a Kafka image.

Both Dockerfiles (``dockerfiles/stage.Dockerfile``, ``dockerfiles/kafka.Dockerfile`` in a
checkout) take their base image as the build argument ``BASE``. Nothing inside a
build reaches a package index: Python packages are installed on the host with
``pip install --target`` (for the base's Python version) and copied in, and Kafka
is the Maven jars ``fogverse fetch-jars`` caches. Each image is tagged with a hash
of everything that went into it, so a rerun with nothing changed builds nothing,
and also ``latest`` (the last one asked for).

Run ``python -m deploy_scripts.docker_images [stage|kafka|all] --base IMAGE``; it
prints ``export FOGVERSE_STAGE_IMAGE=...`` / ``FOGVERSE_KAFKA_IMAGE=...`` lines.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy_scripts.errors import DeployError

__all__ = [
    "ENV_KAFKA_IMAGE",
    "ENV_STAGE_IMAGE",
    "KAFKA_REPOSITORY",
    "STAGE_REPOSITORY",
    "build_kafka_image",
    "build_stage_image",
    "engine_environment",
    "main",
    "project_root",
]

STAGE_REPOSITORY = "fogverse-stage"
KAFKA_REPOSITORY = "fogverse-kafka"
ENV_STAGE_IMAGE = "FOGVERSE_STAGE_IMAGE"
ENV_KAFKA_IMAGE = "FOGVERSE_KAFKA_IMAGE"
ENV_DOCKER_BASE = "FOGVERSE_DOCKER_BASE"
ENV_DOCKER_UNAVAILABLE = "FOGVERSE_DOCKER_UNAVAILABLE"

_PACKAGES = ("fogverse", "master", "workers", "deploy_scripts")
_SOURCE_SUFFIXES = frozenset({".py", ".properties", ".xml", ".typed", ".toml", ".json"})
# Wheels for the base's Python, whatever the host runs: manylinux tags glibc bases accept.
_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def project_root() -> Path:
    """The checkout this package was loaded from (it holds ``dockerfiles/``)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "dockerfiles" / "stage.Dockerfile").is_file():
        raise DeployError(
            f"no dockerfiles/stage.Dockerfile under {root}:"
            " images are built from a fogverse checkout"
        )
    return root


def engine_environment(root: Path | None = None) -> dict[str, str]:
    """``DOCKER_HOST`` and the base image, from ``scripts/docker-env.sh`` unless already set.

    The script starts an engine and builds the base when needed (a minute the first
    time). Its settings are also put into ``os.environ``, where the docker SDK,
    testcontainers and child processes read them. Raises DeployError saying why
    when no engine can be had.
    """
    if os.environ.get(ENV_DOCKER_UNAVAILABLE):
        raise DeployError(f"no Docker engine: {os.environ[ENV_DOCKER_UNAVAILABLE]}")
    if os.environ.get("DOCKER_HOST") and os.environ.get(ENV_DOCKER_BASE):
        return {k: os.environ[k] for k in ("DOCKER_HOST", ENV_DOCKER_BASE)}
    script = (root or project_root()) / "scripts" / "docker-env.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        raise DeployError(f"{script} failed: {done.stderr[-1000:]}")
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            found[key] = value
    if ENV_DOCKER_UNAVAILABLE in found:
        raise DeployError(f"no Docker engine: {found[ENV_DOCKER_UNAVAILABLE]}")
    os.environ.update(found)
    return found


def _cache_dir() -> Path:
    base = os.environ.get("FOGVERSE_CACHE") or Path.home() / ".cache" / "fogverse"
    return Path(base) / "docker"


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:12]


def _tree_files(root: Path, dirs: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for name in dirs:
        top = root / name
        found += [
            p for p in top.rglob("*")
            if p.is_file() and p.suffix in _SOURCE_SUFFIXES and "__pycache__" not in p.parts
        ]  # fmt: skip
    return sorted(found)


def _file_parts(root: Path, files: Iterable[Path]) -> list[bytes]:
    parts: list[bytes] = []
    for path in files:
        parts += [str(path.relative_to(root)).encode(), path.read_bytes()]
    return parts


def _image_exists(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _base_id(client: Any, base: str) -> str:
    import docker.errors

    try:
        return str(client.images.get(base).id)
    except docker.errors.ImageNotFound:
        # A registry user's base: its name is all we can hash before the build pulls it.
        return base


def _build(client: Any, context: Path, dockerfile: str, tag: str, base: str) -> None:
    import docker.errors

    try:
        client.images.build(
            path=str(context), dockerfile=dockerfile, tag=tag, buildargs={"BASE": base},
            rm=True, forcerm=True,
        )  # fmt: skip
    except docker.errors.BuildError as exc:
        tail = "".join(str(line.get("stream", line.get("error", ""))) for line in exc.build_log)
        raise DeployError(f"building {tag} failed: {exc}\n{tail[-2000:]}") from None


def _found(client: Any, tag: str) -> str:
    """``tag``, also tagged ``latest`` so a compose file's default name finds it."""
    repository = tag.partition(":")[0]
    client.images.get(tag).tag(repository, "latest")
    return tag


def _prune(client: Any, repository: str, keep: int = 3, min_age_s: float = 3600.0) -> None:
    """Drop all but the newest ``keep`` images of ``repository``: every change makes one.

    Younger ones stay too: another test run on the same engine may be using them.
    """
    import docker.errors

    images = sorted(client.images.list(name=repository), key=lambda i: i.attrs["Created"])
    cutoff = time.time() - min_age_s
    for image in images[:-keep]:
        created = datetime.fromisoformat(image.attrs["Created"][:26].rstrip("Z"))
        if created.replace(tzinfo=UTC).timestamp() > cutoff:
            continue
        for tag in image.tags:
            # One in use by a container stays; it goes next time.
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag)


def _dependencies(root: Path) -> list[str]:
    with open(root / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    return [str(dep) for dep in project.get("dependencies", [])]


def _pip(args: Sequence[str]) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           *args]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DeployError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")


def _deps_dir(deps: list[str], python: str) -> Path:
    """The dependencies installed for ``python``, cached by what they are."""
    target = _cache_dir() / f"deps-{_digest([python.encode(), *map(str.encode, deps)])}"
    if not target.is_dir():
        partial = Path(tempfile.mkdtemp(prefix="deps-", dir=target.parent))
        platforms = [arg for p in _PLATFORMS for arg in ("--platform", p)]
        _pip(["--target", str(partial), "--only-binary=:all:", "--python-version", python,
              "--implementation", "cp", *platforms, *deps])  # fmt: skip
        partial.rename(target)
    return target


def _link_tree(source: Path, target: Path) -> None:
    # Hard links are instant and cost no space; a copy where they are not allowed.
    shutil.copytree(source, target, copy_function=_link_or_copy, symlinks=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_stage_image(
    client: Any,
    base: str,
    *,
    python: str = "3.11",
    app_files: Mapping[str, Path] | None = None,
    root: Path | None = None,
) -> str:
    """Build (or find) the stage image on ``base`` and return its tag.

    ``python`` is the base's Python version (wheels are chosen for it);
    ``app_files`` maps a path under ``/app`` to a host file to put there.
    """
    root = root or project_root()
    dockerfile = root / "dockerfiles" / "stage.Dockerfile"
    sources = [*_tree_files(root, (*_PACKAGES, "examples")), root / "pyproject.toml"]
    extra = sorted((app_files or {}).items())
    deps = _dependencies(root)
    tag = f"{STAGE_REPOSITORY}:" + _digest([
        dockerfile.read_bytes(), _base_id(client, base).encode(), python.encode(),
        *_file_parts(root, sources),
        *(part for name, path in extra for part in (name.encode(), path.read_bytes())),
    ])  # fmt: skip
    if _image_exists(client, tag):
        return _found(client, tag)
    _cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fogverse-stage-", dir=_cache_dir()) as tmp:
        context = Path(tmp)
        _link_tree(_deps_dir(deps, python), context / "deps")
        _pip(["--no-deps", "--target", str(context / "project"), str(root)])
        shutil.copytree(root / "examples", context / "app" / "examples",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        for name, path in extra:
            (context / "app" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, context / "app" / name)
        shutil.copy2(dockerfile, context / "Dockerfile")
        _build(client, context, "Dockerfile", tag, base)
    _prune(client, STAGE_REPOSITORY)
    return _found(client, tag)


def build_kafka_image(client: Any, base: str, *, jars: Path, root: Path | None = None) -> str:
    """Build (or find) the Kafka image from the jars in ``jars`` and return its tag."""
    root = root or project_root()
    docker_dir = root / "dockerfiles"
    log4j = root / "fogverse" / "broker" / "log4j2.properties"
    files = [docker_dir / "kafka.Dockerfile", docker_dir / "kafka-entrypoint.sh",
             docker_dir / "kafka-broker-api-versions.sh", log4j]  # fmt: skip
    jar_names = sorted(p.name for p in jars.glob("*.jar"))
    if not jar_names:
        raise DeployError(f"no jars in {jars}: run `fogverse fetch-jars` first")
    tag = f"{KAFKA_REPOSITORY}:" + _digest([
        _base_id(client, base).encode(), *(f.read_bytes() for f in files),
        *(f"{n}:{(jars / n).stat().st_size}".encode() for n in jar_names),
    ])  # fmt: skip
    if _image_exists(client, tag):
        return _found(client, tag)
    _cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fogverse-kafka-", dir=_cache_dir()) as tmp:
        context = Path(tmp)
        (context / "lib").mkdir()
        for name in jar_names:
            _link_or_copy(str(jars / name), str(context / "lib" / name))
        for f in files:
            shutil.copy2(f, context / f.name)
        _build(client, context, "kafka.Dockerfile", tag, base)
    _prune(client, KAFKA_REPOSITORY)
    return _found(client, tag)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy_scripts.docker_images")
    parser.add_argument("which", choices=("stage", "kafka", "all"), nargs="?", default="all")
    parser.add_argument("--base", default=os.environ.get(ENV_DOCKER_BASE),
                        help="base image (default $FOGVERSE_DOCKER_BASE)")
    parser.add_argument("--python", default="3.11", help="the base's Python version")
    args = parser.parse_args(argv)
    if not args.base:
        parser.error("no base image: pass --base or set FOGVERSE_DOCKER_BASE")
    try:
        from docker import from_env
    except ImportError:
        print("the docker SDK is missing: pip install 'fogverse[docker]'", file=sys.stderr)
        return 1
    from fogverse.broker import ensure_kafka_jars

    client = from_env()
    try:
        if args.which in ("stage", "all"):
            stage = build_stage_image(client, args.base, python=args.python)
            print(f"export {ENV_STAGE_IMAGE}={stage}")
        if args.which in ("kafka", "all"):
            kafka = build_kafka_image(client, args.base, jars=ensure_kafka_jars())
            print(f"export {ENV_KAFKA_IMAGE}={kafka}")
    except DeployError as exc:
        print(f"docker_images: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
