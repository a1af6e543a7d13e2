"""Every documented snippet runs, against the emulator, as a reader would run it.

Collected: every ```python, ```bash, ```sh and ```shell block of README.md and docs/*.md, and
the ``Quick start::`` block of the module docstring of sources/caspio/__init__.py. Each block is
one test, named ``<file>:<line>`` (the line of its opening fence). Other fences (toml, json,
text, cron, no language) are not run: use ```text for output samples.

How a block runs:

- Per document, one working directory: a copy of this checkout (tracked and untracked files,
  nothing git ignores, so never ``.dlt/secrets.toml``), since the docs speak from a checkout
  (``pip install -e .``, ``.dlt/config.toml``, ``from sources.caspio import ...``). The
  document's blocks run there in document order, so a block may use what an earlier one made
  (``caspio-sync demo`` and then ``caspio_demo.duckdb``). Running one block alone (``-k``) runs
  the earlier blocks of its document first.
- Per document, one emulator serving the demo account, and this environment (nothing else is
  inherited but locale, time zone, terminal, user name, ``CI`` and the OpenBLAS settings):
  ``PATH`` with the running interpreter's bin directory first; ``HOME``, ``XDG_*``, ``TMPDIR``
  and ``DLT_DATA_DIR`` (dlt run as root ignores ``HOME`` for ``/var/dlt``) in a private
  directory, so dlt's pipelines, the token cache and pip's cache never touch the real home or
  the machine;
  ``SOURCES__CASPIO__CREDENTIALS__CLIENT_ID`` / ``__CLIENT_SECRET`` / ``__INTEGRATION_URL`` of
  the emulator; dlt telemetry off.
- Shell blocks run with ``bash -e -o pipefail -x`` (a failing command fails the block, and the
  trace shows which); Python blocks with the running interpreter (``python -c``).

Rules that rewrite a shell block before it runs (the block as run is in every failure message):

1. Install commands. ``python3 -m venv .venv`` and ``.venv/bin/pip install -e <spec>`` (joined
   by ``&&``, as in the README) are dropped, and ``.venv`` in the working directory is the
   running interpreter's environment, which was installed by that very command (.ci/run runs
   the README's test command verbatim, install included). Any other ``pip install`` in a run
   block is an error: it would install into the developer's environment.
2. Real-account credentials. ``export SOURCES__CASPIO__...=...`` lines are commented out: the
   documented values (``...``, ``https://c1abc123.caspio.com``) name a real account, and the
   environment above already carries the emulator's. The commands that follow run as written.
3. The test suite. A block marked ``collect-only`` gets ``--collect-only -q`` after each
   ``pytest`` command: the whole suite is collected (every test module imported, in the copy)
   but not run, since this module is part of it. An unmarked block that runs pytest is an error.

Markers: an HTML comment on the line(s) right before a fence, ``<!-- snippet: KIND (reason) -->``:

- ``skip (reason)``: not run (real warehouse credentials, a real Caspio host, a deployment);
- ``xfail (reason)``: the product is wrong, not the doc; runs with ``xfail(strict=True)``;
- ``collect-only (reason)``: rule 3;
- ``needs-postgres``: ``DESTINATION__POSTGRES__CREDENTIALS`` names a database created for
  the document on the test PostgreSQL server (dropped afterwards); skipped like the other
  warehouse tests where that server is absent, failed when ``CI=true``.

A marker before anything but a run block, or an unknown kind, fails collection.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from caspio_emulator import DEMO_DATASET, Emulator

ROOT = Path(__file__).resolve().parents[2]
MARKDOWN = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
QUICK_START = "sources/caspio/__init__.py"
LANGUAGES = {"python": "python", "bash": "shell", "sh": "shell", "shell": "shell"}
KINDS = {"skip", "xfail", "collect-only", "needs-postgres"}
NEEDS_REASON = {"skip", "xfail", "collect-only"}
BLOCK_TIMEOUT = 240  # seconds; a snippet that hangs fails with its output so far
OUTPUT_TAIL = 4000

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(?P<kind>[\w-]+)\s*(?:\((?P<reason>.*)\))?\s*-->\s*$")
PYTEST_COMMAND = re.compile(r"(?:^|\s|/)(?:python3?\s+-m\s+pytest|pytest)(?:\s|$)")
CREDENTIAL_EXPORT = re.compile(r"^\s*export\s+SOURCES__CASPIO__\w+=")
INSTALL_PARTS = [
    re.compile(r"python3? -m venv \.venv"),
    re.compile(r"\.venv/bin/pip install -e \S+"),
]
KEEP_ENV = {"LANG", "LANGUAGE", "TZ", "TERM", "CI", "USER", "LOGNAME", "SYSTEMROOT"}
KEEP_ENV_PREFIXES = ("LC_", "OPENBLAS_")


class SnippetError(ValueError):
    """A document or a block that this module cannot run as documented."""


@dataclasses.dataclass(frozen=True)
class Block:
    document: str  # relative to ROOT
    line: int  # 1-based: the opening fence, or the first line of a docstring block
    language: str  # "python" or "shell"
    code: str
    markers: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}"

    def marker(self, kind: str) -> str | None:
        """The reason given with marker `kind` ("" when it has none), None without it."""
        return next((reason for k, reason in self.markers if k == kind), None)


def markdown_blocks(document: str, text: str) -> list[Block]:
    """The python/shell blocks of one markdown text, each with the markers right above it."""
    blocks: list[Block] = []
    lines = text.splitlines()
    pending: list[tuple[str, str]] = []
    pending_line = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line)
        opening = FENCE.match(line)
        if marker:
            kind, reason = marker["kind"], (marker["reason"] or "").strip()
            if kind not in KINDS:
                raise SnippetError(f"{document}:{i + 1}: unknown snippet marker {kind!r}")
            if kind in NEEDS_REASON and not reason:
                raise SnippetError(f"{document}:{i + 1}: snippet marker {kind!r} needs a reason")
            pending.append((kind, reason))
            pending_line = pending_line or i + 1
        elif opening:
            fence, indent = opening["fence"], len(opening["indent"])
            language = LANGUAGES.get((opening["info"].split() or [""])[0].lower())
            end = i + 1
            while end < len(lines) and not re.match(
                rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[end]
            ):
                end += 1
            if language:
                body = [ln[indent:] if ln[:indent].isspace() else ln for ln in lines[i + 1 : end]]
                blocks.append(
                    Block(document, i + 1, language, "\n".join(body) + "\n", tuple(pending))
                )
            elif pending:
                raise SnippetError(
                    f"{document}:{pending_line}: marker before a block that never runs"
                )
            pending, pending_line = [], 0
            i = end
        elif line.strip() and pending:
            raise SnippetError(f"{document}:{pending_line}: marker not right before a code block")
        i += 1
    if pending:
        raise SnippetError(f"{document}:{pending_line}: marker at the end of the document")
    return blocks


def docstring_quick_start(document: str, text: str) -> Block:
    """The reStructuredText literal block after ``Quick start::`` in a module docstring."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.rstrip().endswith("Quick start::")), None)
    if start is None:
        raise SnippetError(f"{document}: no 'Quick start::' block in its docstring")
    first = next(i for i in range(start + 1, len(lines)) if lines[i].strip())
    indent = len(lines[first]) - len(lines[first].lstrip())
    end = first
    while end < len(lines) and (
        not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) >= indent
    ):
        end += 1
    code = textwrap.dedent("\n".join(lines[first:end])).strip("\n") + "\n"
    return Block(document, first + 1, "python", code)


def all_blocks() -> list[Block]:
    blocks = [b for doc in MARKDOWN for b in markdown_blocks(doc, (ROOT / doc).read_text())]
    blocks.append(docstring_quick_start(QUICK_START, (ROOT / QUICK_START).read_text()))
    return blocks


def shell_as_run(block: Block) -> str:
    """The shell block after rules 1-3 of the module docstring."""
    out = []
    for line in block.code.splitlines():
        if CREDENTIAL_EXPORT.match(line):
            out.append(f"# rule 2, the emulator's value is set: {line.strip()}")
            continue
        parts = [
            p for p in line.split(" && ") if not any(r.fullmatch(p.strip()) for r in INSTALL_PARTS)
        ]
        if len(parts) < len(line.split(" && ")):
            line = " && ".join(parts) if parts else ": # rule 1: installed already"
        command = line.split(" #", 1)[0]
        if re.search(r"\bpip3?\s+install\b|-m\s+pip\s+install\b", command):
            raise SnippetError(f"{block.id}: a pip install this test does not know: {line.strip()}")
        if PYTEST_COMMAND.search(command):
            if block.marker("collect-only") is None:
                raise SnippetError(
                    f"{block.id}: runs pytest; mark it <!-- snippet: collect-only (why) -->"
                )
            line = _collect_only(line)
        out.append(line)
    return "\n".join(out) + "\n"


def _collect_only(line: str) -> str:
    """``--collect-only -q`` after every pytest command of one line."""
    code, _, comment = line.partition(" #")
    segments = re.split(r"(\s*(?:&&|\|\||;)\s*)", code)
    for n, segment in enumerate(segments):
        if PYTEST_COMMAND.search(segment):
            segments[n] = segment.rstrip() + " --collect-only -q"
    return "".join(segments) + (f" #{comment}" if comment else "")


BLOCKS = all_blocks()


@dataclasses.dataclass
class Outcome:
    block: Block
    as_run: str
    returncode: int | None  # None: timed out, or not run
    stdout: str = ""
    stderr: str = ""
    note: str = ""
    ran: bool = True

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def report(self, cwd: Path, earlier: list[Outcome]) -> str:
        how = "timed out" if self.returncode is None else f"exited {self.returncode}"
        lines = [f"{self.block.id} ({self.block.language}) {how} {self.note}".rstrip()]
        failed_before = [o.block.id for o in earlier if o.ran and not o.ok]
        if failed_before:
            lines.append(
                f"(earlier blocks of this document failed too: {', '.join(failed_before)})"
            )
        lines += [f"--- as run, in {cwd} ---", self.as_run.rstrip()]
        lines += ["--- stdout (tail) ---", self.stdout[-OUTPUT_TAIL:].rstrip()]
        lines += ["--- stderr (tail) ---", self.stderr[-OUTPUT_TAIL:].rstrip()]
        return "\n".join(lines)


class Document:
    """One document's working directory, environment, emulator and outcomes so far."""

    def __init__(self, name: str, base: Path) -> None:
        self.name = name
        self.cwd = base / "checkout"
        self.home = base / "home"
        self.scripts = base / "scripts"
        for path in (self.home / "tmp", self.scripts):
            path.mkdir(parents=True)
        copy_checkout(self.cwd)
        (self.cwd / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
        self.emulator = Emulator(dataset=DEMO_DATASET).start()
        self.outcomes: dict[int, Outcome] = {}
        self.postgres_database: tuple[str, str] | None = None  # (admin DSN, database)

    def environment(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if k in KEEP_ENV or k.startswith(KEEP_ENV_PREFIXES)
        }
        env["PATH"] = os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]
        )
        home = str(self.home)
        env.update(
            HOME=home,
            XDG_CACHE_HOME=f"{home}/.cache",
            XDG_CONFIG_HOME=f"{home}/.config",
            XDG_DATA_HOME=f"{home}/.local/share",
            XDG_STATE_HOME=f"{home}/.local/state",
            # dlt run as root keeps pipelines in /var/dlt whatever HOME says
            DLT_DATA_DIR=f"{home}/.dlt",
            TMPDIR=f"{home}/tmp",
            RUNTIME__DLTHUB_TELEMETRY="false",
            SOURCES__CASPIO__CREDENTIALS__CLIENT_ID=self.emulator.client_id,
            SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET=self.emulator.client_secret,
            SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL=self.emulator.base_url,
        )
        return env

    def postgres_dsn(self, server_dsn: str) -> str:
        """A database of this document's own on the test server (created on first use)."""
        import psycopg2

        if self.postgres_database is None:
            name = f"caspio_snippets_{uuid.uuid4().hex[:10]}"
            conn = psycopg2.connect(server_dsn)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
            conn.close()
            self.postgres_database = (server_dsn, name)
        server, name = self.postgres_database
        return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))

    def run(self, block: Block, postgres: str | None) -> Outcome:
        env = self.environment()
        if postgres:
            env["DESTINATION__POSTGRES__CREDENTIALS"] = self.postgres_dsn(postgres)
        if block.language == "python":
            as_run, command = block.code, [sys.executable, "-c", block.code]
        else:
            as_run = shell_as_run(block)
            script = self.scripts / f"line{block.line}.sh"
            script.write_text(as_run)
            command = ["bash", "-e", "-o", "pipefail", "-x", str(script)]
        # A session of its own: on a timeout the whole block goes (bash and what it started).
        proc = subprocess.Popen(
            command,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            return Outcome(block, as_run, None, stdout, stderr, f"after {BLOCK_TIMEOUT}s")
        return Outcome(block, as_run, proc.returncode, stdout, stderr)

    def close(self) -> None:
        self.emulator.stop()
        if self.postgres_database:
            import psycopg2

            server, name = self.postgres_database
            conn = psycopg2.connect(server)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.close()


def copy_checkout(dest: Path) -> None:
    """The files of this checkout that git would commit or could (git-ignored ones left out)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


class Runner:
    """Runs blocks once each, a document's earlier blocks first."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.documents: dict[str, Document] = {}

    def document(self, name: str) -> Document:
        if name not in self.documents:
            slug = re.sub(r"\W+", "_", name)
            self.documents[name] = Document(name, self.tmp_path_factory.mktemp(f"snippets_{slug}"))
        return self.documents[name]

    def run(
        self, block: Block, postgres: Callable[[], str | None]
    ) -> tuple[Outcome, list[Outcome]]:
        """The block's outcome, and those of the document's blocks before it."""
        doc = self.document(block.document)
        earlier = []
        for before in (b for b in BLOCKS if b.document == block.document and b.line < block.line):
            if before.marker("skip") is not None:
                continue
            if before.line not in doc.outcomes:
                doc.outcomes[before.line] = self._run_one(doc, before, postgres)
            earlier.append(doc.outcomes[before.line])
        if block.line not in doc.outcomes:
            doc.outcomes[block.line] = self._run_one(doc, block, postgres)
        return doc.outcomes[block.line], earlier

    def _run_one(self, doc: Document, block: Block, postgres: Callable[[], str | None]) -> Outcome:
        server = None
        if block.marker("needs-postgres") is not None:
            server = postgres()
            if server is None:
                return Outcome(block, block.code, None, note="(no PostgreSQL)", ran=False)
        return doc.run(block, server)

    def close(self) -> None:
        for doc in self.documents.values():
            doc.close()


@pytest.fixture(scope="session")
def snippet_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    runner = Runner(tmp_path_factory)
    yield runner
    runner.close()


def _postgres_or_none(request: pytest.FixtureRequest) -> str | None:
    """The test server's DSN, None where the `postgres_dsn` fixture skips (it fails in CI)."""
    try:
        dsn: str = request.getfixturevalue("postgres_dsn")
    except pytest.skip.Exception:
        return None
    return dsn


def _param(block: Block) -> Any:
    marks: list[Any] = []
    if (reason := block.marker("skip")) is not None:
        marks.append(pytest.mark.skip(reason=reason))
    if (reason := block.marker("xfail")) is not None:
        marks.append(pytest.mark.xfail(reason=reason, strict=True))
    return pytest.param(block, id=block.id, marks=marks)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_snippet_runs(block: Block, snippet_runner: Runner, request: pytest.FixtureRequest) -> None:
    if block.marker("needs-postgres") is not None:
        request.getfixturevalue("postgres_dsn")  # skipped without a server, failed in CI
    outcome, earlier = snippet_runner.run(block, lambda: _postgres_or_none(request))
    if not outcome.ok:
        pytest.fail(
            outcome.report(snippet_runner.document(block.document).cwd, earlier), pytrace=False
        )


def test_the_documents_have_runnable_blocks() -> None:
    """The extraction itself: a fence this module stopped seeing would pass silently."""
    found = {b.document for b in BLOCKS}
    assert {"README.md", "docs/architecture.md", "docs/emulator.md", QUICK_START} <= found
    assert sum(b.document == "README.md" and b.language == "shell" for b in BLOCKS) >= 3
    assert sum(b.marker("skip") is not None for b in BLOCKS) <= 3, "skips must stay few"


def test_markers_are_read_from_the_line_before_the_fence() -> None:
    text = "intro\n\n<!-- snippet: skip (needs a Snowflake account) -->\n```bash\nexit 1\n```\n"
    (block,) = markdown_blocks("x.md", text)
    assert (block.line, block.language, block.code) == (4, "shell", "exit 1\n")
    assert block.marker("skip") == "needs a Snowflake account"
    with pytest.raises(SnippetError, match="never runs"):
        markdown_blocks("x.md", "<!-- snippet: skip (why) -->\n```toml\na = 1\n```\n")
    with pytest.raises(SnippetError, match="not right before"):
        markdown_blocks("x.md", "<!-- snippet: skip (why) -->\ntext\n```sh\ntrue\n```\n")
    with pytest.raises(SnippetError, match="unknown"):
        markdown_blocks("x.md", "<!-- snippet: maybe (why) -->\n```sh\ntrue\n```\n")
    with pytest.raises(SnippetError, match="needs a reason"):
        markdown_blocks("x.md", "<!-- snippet: xfail -->\n```sh\ntrue\n```\n")


def test_the_rewriting_rules() -> None:
    readme_install = (
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/caspio-sync demo\n"
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' "
        "&& .venv/bin/python -m pytest\n"
        "export SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL=https://c1abc123.caspio.com  # real\n"
        "python3 -m venv .venv && .venv/bin/pip install -e .\n"
    )
    block = Block("x.md", 1, "shell", readme_install, (("collect-only", "recursion"),))
    assert shell_as_run(block).splitlines() == [
        ".venv/bin/caspio-sync demo",
        ".venv/bin/python -m pytest --collect-only -q",
        "# rule 2, the emulator's value is set: "
        "export SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL=https://c1abc123.caspio.com  # real",
        ": # rule 1: installed already",
    ]
    with pytest.raises(SnippetError, match="collect-only"):
        shell_as_run(Block("x.md", 1, "shell", "pytest -x tests\n"))
    with pytest.raises(SnippetError, match="pip install"):
        shell_as_run(Block("x.md", 1, "shell", "pip install -e . 'dlt[bigquery]'\n"))
    assert (
        _collect_only("cd x && pytest -k y; echo done  # note")
        == "cd x && pytest -k y --collect-only -q; echo done  # note"
    )
